"""Small HTML builders for the report: every piece of text goes through :func:`esc`.

Task docstrings, check messages and tracebacks contain ``<``, ``>`` and ``&``
(``x < 0``, ``List[int]``, ``a & b``), so nothing from a run record reaches the page
unescaped. The builders return strings; the page is assembled by joining them.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

STATUS_ORDER = ("pass", "fail", "skip", "error")


def esc(x: Any) -> str:
    """``html.escape(str(x))`` with quotes escaped too (safe in attributes and text)."""
    return html.escape("" if x is None else str(x), quote=True)


def slug(x: str) -> str:
    """An id-safe fragment: ``fundamentals.manual_matmul`` -> ``fundamentals-manual_matmul``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", x).strip("-") or "x"


def fmt(v: Any, digits: int = 4) -> str:
    """A cell value as text: floats to ``digits`` significant digits, bools as yes/no."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x, digits) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt(x, digits)}" for k, x in v.items())
    return str(v)


def badge(status: str) -> str:
    return f'<span class="badge st-{esc(status)}">{esc(status)}</span>'


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    cls: str = "",
    raw_cols: Sequence[int] = (),
    headers: Sequence[str] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table. Cells are escaped and formatted with :func:`fmt`, except the
    column indices in ``raw_cols`` whose cells are HTML built by this module."""
    head = "".join(f"<th>{esc(h)}</th>" for h in (headers or columns))
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            text = v if j in raw_cols else esc(fmt(v))
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        rc = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{rc}>{''.join(cells)}</tr>")
    c = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<div class="tablewrap"><table{c}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def kv_table(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column key/value table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc('none' if v is None else fmt(v))}</td></tr>" for k, v in items)
    return f'<div class="tablewrap"><table class="kv"><tbody>{rows}</tbody></table></div>'


def details(summary_html: str, body_html: str, *, open_: bool = False, cls: str = "", attrs: str = "") -> str:
    """A collapsible block; ``summary_html`` is HTML (escape its text first)."""
    o = " open" if open_ else ""
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<details{c}{o}{attrs}><summary>{summary_html}</summary>{body_html}</details>"


def para(text: str, cls: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<p{c}>{esc(text)}</p>"


def ul(items: Iterable[str], *, raw: bool = False, cls: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    lis = "".join(f"<li>{x if raw else esc(x)}</li>" for x in items)
    return f"<ul{c}>{lis}</ul>"
