"""Numbering and cross-references over the assembled Markdown, and the table of contents.

Russian reports number sections (1, 1.1), figures ("Рисунок 3 — ...") and tables ("Таблица 2 —
..."); pandoc's DOCX writer does none of it, so it happens here, on the Markdown, before pandoc
runs. Labels follow pandoc-crossref's spelling: `{#fig:name}` on a picture, `{#tbl:name}` at the
end of a `Table:` caption, `{#sec:name}` on a heading; `@fig:name`, `@tbl:name` and `@sec:name` in
the text become the numbers. Headings marked `.unnumbered` get no number, `.notoc` keeps a heading
out of the table of contents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

_FENCE = re.compile(r"^(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_ATTRS = re.compile(r"\s*\{((?:\s*[#.][^\s{}]+)+)\s*\}$")
_FIGURE = re.compile(r"^!\[(.*)\]\(([^)\s]+)\)(?:\{([^{}]*)\})?\s*$")
_TABLE = re.compile(r"^Table:\s*(.*?)\s*(?:\{#(tbl:[\w-]+)\})?\s*$")
_REF = re.compile(r"@((?:fig|tbl|sec):[\w-]+)")


class NumberingError(ValueError):
    """A reference to a label that does not exist, or a label used twice."""


@dataclass
class Heading:
    level: int
    text: str
    bookmark: str
    in_toc: bool


def _outside_code(lines: list[str]):
    """Yields (index, line) for the lines that are not inside fenced code."""
    fence = None
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield index, line
        elif (
            match
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
            and line.strip() == match.group(1)
        ):
            fence = None


def number(markdown: str) -> tuple[str, list[Heading]]:
    """Numbers headings, figures and tables, resolves references; returns the text and the headings."""
    lines = markdown.split("\n")
    labels: dict[str, str] = {}
    headings: list[Heading] = []
    counters = [0] * 6
    figures = tables = unnumbered = 0

    def label(name: str | None, value: str) -> None:
        if name:
            if name in labels:
                raise NumberingError(f"the label {name} is used twice")
            labels[name] = value

    for index, line in _outside_code(lines):
        if m := _HEADING.match(line):
            level, text = len(m.group(1)), m.group(2)
            classes, ident = [], None
            if a := _ATTRS.search(text):
                text = text[: a.start()]
                for token in a.group(1).split():
                    if token.startswith("."):
                        classes.append(token[1:])
                    else:
                        ident = token[1:]
            if "unnumbered" in classes:
                unnumbered += 1
                bookmark = re.sub(r"\W", "_", ident or f"sec_u{unnumbered}", flags=re.ASCII)
                shown = text
            else:
                counters[level - 1] += 1
                counters[level:] = [0] * (6 - level)
                num = ".".join(str(n) for n in counters[:level])
                bookmark = "sec_" + num.replace(".", "_")
                shown = f"{num} {text}"
                label(ident if ident and ident.startswith("sec:") else None, num)
            headings.append(Heading(level, shown, bookmark, "notoc" not in classes))
            # A point bookmark inside the heading paragraph, for the table of contents. (Pandoc's
            # own bookmarks span whole sections, and LibreOffice cannot resolve a page reference to
            # one that ends after a table.) Pandoc runs without auto_identifiers, so these are the
            # only bookmarks.
            mark = 90000 + len(headings)
            lines[index] = (
                f'{m.group(1)} `<w:bookmarkStart w:id="{mark}" w:name="{bookmark}"/>'
                f'<w:bookmarkEnd w:id="{mark}"/>`{{=openxml}}{shown}'
            )
        elif m := _FIGURE.match(line):
            figures += 1
            attrs = (m.group(3) or "").split()
            ident = next((a[1:] for a in attrs if a.startswith("#")), None)
            label(ident, str(figures))
            kept = " ".join(a for a in attrs if not a.startswith("#"))
            lines[index] = f"![Рисунок {figures} — {m.group(1)}]({m.group(2)})" + (f"{{{kept}}}" if kept else "")
        elif m := _TABLE.match(line):
            tables += 1
            label(m.group(2), str(tables))
            lines[index] = f"Table: Таблица {tables} — {m.group(1)}"

    def resolve(match: re.Match) -> str:
        name = match.group(1)
        if name not in labels:
            raise NumberingError(f"a reference to {name}, which no figure, table or heading defines")
        return labels[name]

    for index, line in _outside_code(lines):
        lines[index] = _REF.sub(resolve, line)
    return "\n".join(lines), headings


def _plain(text: str) -> str:
    return escape(re.sub(r"[`*_]", "", text))


def toc_openxml(headings: list[Heading], max_level: int = 2) -> str:
    """A table of contents as raw OpenXML: each line links to its heading and ends in a PAGEREF
    field, which LibreOffice computes when it lays out the pages and Word when it updates fields
    (the reference document asks it to on opening)."""
    out = ["```{=openxml}", '<w:p><w:pPr><w:pStyle w:val="TOCHeading"/></w:pPr><w:r><w:t>Содержание</w:t></w:r></w:p>']
    for heading in headings:
        if heading.level > max_level or not heading.in_toc:
            continue
        out.append(
            f'<w:p><w:pPr><w:pStyle w:val="TOC{heading.level}"/></w:pPr>'
            f'<w:hyperlink w:anchor="{heading.bookmark}" w:history="1"><w:r><w:t xml:space="preserve">'
            f"{_plain(heading.text)}</w:t></w:r></w:hyperlink><w:r><w:tab/></w:r>"
            '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            f'<w:r><w:instrText xml:space="preserve"> PAGEREF {heading.bookmark} \\h </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        )
    out.append("```")
    return "\n".join(out)


PAGE_BREAK = '```{=openxml}\n<w:p><w:r><w:br w:type="page"/></w:r></w:p>\n```'
