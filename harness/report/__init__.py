"""The HTML report (``reports/index.html``): see :mod:`harness.report.render`.

Modules: ``render`` (entry point, page, history collection), ``sections`` (summary,
environment), ``cards`` (one card per task), ``history`` (medians over runs,
regressions), ``figures`` (plotly figure specs), ``catalogue`` (TASKS.md coverage),
``html`` (escaping builders), ``assets`` (inline CSS and JS).
"""

from harness.report.render import render_report  # noqa: F401
