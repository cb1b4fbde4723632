"""mkdocs hook: render the Sphinx roles of vbinfer's docstrings.

The docstrings use Sphinx roles (``:func:`~vbinfer.inference.fit```, ``:math:`x^2```), which
mkdocstrings leaves as text followed by a code span. This hook turns ``:func:`` /
``:class:`` / ... spans into plain code spans (``~a.b.c`` shows as ``c``, as in Sphinx) and
``:math:`` spans into inline MathJax (arithmatex), after each page is rendered.
"""

from __future__ import annotations

import html
import re

_XREF = re.compile(
    r":(?:func|class|mod|meth|attr|data|obj|exc|const|py:\w+):<code>(~?)([^<]*)</code>"
)
_MATH = re.compile(r":math:<code>([^<]*)</code>")


def _xref(m: re.Match) -> str:
    tilde, target = m.group(1), m.group(2)
    shown = target.rsplit(".", 1)[-1] if tilde else target
    return f"<code>{shown}</code>"


def _math(m: re.Match) -> str:
    return f'<span class="arithmatex">\\({html.unescape(m.group(1))}\\)</span>'


def on_page_content(html_text: str, **kwargs) -> str:
    return _MATH.sub(_math, _XREF.sub(_xref, html_text))
