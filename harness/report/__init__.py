"""The HTML report (``reports/index.html``): see :mod:`harness.report.render`.

Modules: ``render`` (entry point, page, history collection), ``sections`` (summary,
environment with the timer self-test), ``cards`` (one card per task), ``verdicts``
(claims and check strength, in cards and in the summary), ``pictures`` (images and
heatmaps), ``rst`` (lessons from reStructuredText via docutils), ``history`` (medians
over runs, regressions), ``figures`` (plotly figure specs), ``catalogue`` (coverage of
``harness/catalogue.toml``), ``html`` (escaping builders), ``assets`` (inline CSS and JS).
"""

from harness.report.render import render_report  # noqa: F401 - the package's entry point
