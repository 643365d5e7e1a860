"""HTML report (placeholder until the report module lands)."""
from harness.report.render import render_report  # noqa: F401
