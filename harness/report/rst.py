"""Lessons as text a person reads: a task's reStructuredText docstring rendered to HTML.

Task docstrings are written in reStructuredText (``code``, bullet lists, paragraphs,
the odd table). docutils renders them with its ``html5`` writer; the report takes the
body only. Settings keep the page safe and quiet:

* ``report_level`` and ``halt_level`` 5: docutils never writes a system message (an
  unknown role, an unmatched ``*``) into the page and never stops on one; a reference to
  a target that does not exist (``x_``) keeps its text without a link;
* no file insertion, no ``raw`` directive: a docstring cannot pull in a file or HTML;
* no syntax highlighting (no classes the page has no style for);
* the Python cross-reference roles of Sphinx (``:class:`X```, ``:func:`f```, ...), which
  plain docutils does not know, render as code.

Two habits of plain-text docstrings that reStructuredText reads differently are fixed
first (:func:`prepare`), so the lesson reads as its author laid it out:

* a list that starts right under a paragraph line (``Checked:`` then ``* ...``) gets the
  blank line reStructuredText needs to see a list;
* an indented block under a top-level paragraph (a formula, an update rule, a shape
  table) becomes a literal block, keeping its line breaks and alignment, instead of a
  block quote whose lines run together.

When docutils raises anyway, the lesson is shown as escaped preformatted text.
"""

from __future__ import annotations

import io
import re

from harness.report.html import esc

SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": None,  # replaced per call by a throw-away buffer
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "_disable_config": True,
    "doctitle_xform": False,  # a first heading stays in the body instead of becoming the page title
    "sectsubtitle_xform": False,
    "initial_header_level": 5,  # headings inside a card sit below the card's own h4
    "syntax_highlight": "none",
    "embed_stylesheet": False,
    "math_output": "HTML",
}

#: docutils marks an unresolved reference as a link to a system message that the report
#: level leaves out; keep the text, drop the dangling link.
_PROBLEMATIC = re.compile(r'<a href="#system-message-[^"]*"[^>]*class="problematic"[^>]*>(.*?)</a>', re.S)
_PROBLEMATIC_ID = re.compile(r'<a class="problematic" href="#system-message-[^"]*"[^>]*>(.*?)</a>', re.S)


_ITEM = re.compile(r"^\s*(?:[*+-]|\d+[.)]|#\.)\s+\S")
_MARKUP_START = re.compile(r"^\s*(?:\.\. |::|[*+-]\s|\d+[.)]\s|#\.\s|:\w[^:]*:|>>>)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def prepare(text: str) -> str:
    """``text`` with the two plain-text habits above made explicit reStructuredText."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        prev = out[-1] if out else ""
        if line.strip() and prev.strip() and _ITEM.match(line) and not _ITEM.match(prev):
            if _indent(prev) == _indent(line):
                out.append("")  # a list needs a blank line above it
        elif line.strip() and _indent(line) > 0 and not prev.strip() and i >= 2 and not _is_inside_markup(out):
            out += ["::", ""]  # an expanded literal-block marker: rendered as nothing
        out.append(line)
    return "\n".join(out)


def _is_inside_markup(out: list[str]) -> bool:
    """Whether the paragraph above the blank line ending ``out`` is not plain top-level text
    (a list item, a directive, a literal-block introducer, an indented block itself)."""
    j = len(out) - 1
    while j >= 0 and not out[j].strip():
        j -= 1
    if j < 0:
        return True
    start = j
    while start > 0 and out[start - 1].strip():
        start -= 1
    para = out[start : j + 1]
    return any(_indent(ln) > 0 for ln in para) or bool(_MARKUP_START.match(para[0])) or para[-1].rstrip().endswith("::")


#: Sphinx's Python roles, shown as code (``~a.b.C`` as ``C``, as Sphinx does).
SPHINX_ROLES = ("class", "func", "meth", "mod", "attr", "data", "obj", "exc", "const", "ref", "term")


def _register_roles() -> None:
    from docutils import nodes
    from docutils.parsers.rst import roles

    def as_code(name, rawtext, text, lineno, inliner, options=None, content=None):
        shown = text.lstrip("~").rsplit(".", 1)[-1] if text.startswith("~") else text
        return [nodes.literal(rawtext, shown)], []

    for r in SPHINX_ROLES:
        roles.register_local_role(r, as_code)
        roles.register_local_role(f"py:{r}", as_code)


def render_rst(text: str) -> str:
    """HTML of the reStructuredText ``text`` (the body only), or ``<pre>`` on failure."""
    if not text.strip():
        return ""
    text = prepare(text)
    try:
        from docutils.core import publish_parts
        from docutils.writers import html5_polyglot

        _register_roles()
        settings = {**SETTINGS, "warning_stream": io.StringIO()}
        # a writer object, not writer_name="html5": the name argument is deprecated in docutils 0.22+
        body = publish_parts(text, writer=html5_polyglot.Writer(), settings_overrides=settings)["body"]
    except Exception:  # a docstring docutils cannot render is still shown, verbatim
        return f'<pre class="lesson-pre">{esc(text)}</pre>'
    body = _PROBLEMATIC.sub(r"\1", body)
    return _PROBLEMATIC_ID.sub(r"\1", body)
