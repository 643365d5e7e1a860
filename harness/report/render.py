"""Temporary minimal renderer; replaced by the full plotly report."""
from pathlib import Path

from harness.fingerprint import REPO_ROOT


def render_report(runs, out=None, runs_dir=None):
    out = Path(out or REPO_ROOT / "reports" / "index.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("<html><body>report pending</body></html>")
    return out
