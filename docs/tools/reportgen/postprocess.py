"""Edits of the DOCX that pandoc cannot express in Markdown or take from the reference document.

- Paragraphs in table cells get the `TableText` style (12 pt, single spacing). Pandoc gives them
  `Compact`, which tight lists share; and a table style's own font settings are not honoured by
  LibreOffice. Code words in cells (field names, settings) get the `Table Code` character style
  with its monospace font and size also set directly on the run, which both LibreOffice and Word
  honour.
- A thin spacer paragraph follows every table, so the next paragraph does not stick to it.
- Screenshots get a thin grey frame (a white page on white paper has no edge otherwise), and
  pictures keep only their file name as a description, not the path they were built at.
- The document's properties name the author and the title, as the title page does.
- Listings are set in the 8 pt of the `Source Code` style. Pandoc's highlighting styles (`*Tok`)
  derive from `Verbatim Char`, the style of code words in the text, and would carry its larger
  size into the listings; plain listings use `Verbatim Char` itself and get `Code Block Char`.
- Word is asked to update fields on opening, which fills in the page numbers of the table of
  contents (pandoc rewrites settings.xml, so the reference document cannot carry this).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

# Code words in table cells: the `Table Code` character style, and its font and size once more as
# direct formatting, because LibreOffice lays out a character style's font inside a table cell in
# the cell paragraph's font (and a smaller size). "Courier New" is what Word shows; LibreOffice
# shows its metric twin Liberation Mono.
TABLE_CODE_FONT = "Courier New"
TABLE_CODE = (
    '<w:rStyle w:val="TableCode" />'
    f'<w:rFonts w:ascii="{TABLE_CODE_FONT}" w:hAnsi="{TABLE_CODE_FONT}" w:eastAsia="{TABLE_CODE_FONT}" '
    f'w:cs="{TABLE_CODE_FONT}" />'
    '<w:sz w:val="22" /><w:szCs w:val="22" />'
)
SPACER = '<w:p><w:pPr><w:pStyle w:val="TableSpacer"/></w:pPr></w:p>'


def _tables(document_xml: str) -> str:
    def cell_styles(match: re.Match) -> str:
        table = match.group(0).replace('<w:pStyle w:val="Compact" />', '<w:pStyle w:val="TableText" />')
        # Code in cells in 11 pt beside the cells' 12 pt text, as code words are in the body.
        return table.replace('<w:rStyle w:val="VerbatimChar" />', TABLE_CODE)

    document_xml = re.sub(r"<w:tbl>.*?</w:tbl>", cell_styles, document_xml, flags=re.S)
    return document_xml.replace("</w:tbl>", "</w:tbl>" + SPACER)


FRAME = '<a:ln w="6350"><a:solidFill><a:srgbClr val="A0A0A0"/></a:solidFill></a:ln>'


def _pictures(document_xml: str) -> str:
    def one(match: re.Match) -> str:
        drawing = match.group(0)
        path = re.search(r'<pic:cNvPr descr="([^"]*)"', drawing)
        if path:
            if "/screenshots/" in path.group(1):
                drawing = re.sub(r"<a:ln\b[^>]*>.*?</a:ln>", FRAME, drawing, flags=re.S)
            drawing = drawing.replace(f'descr="{path.group(1)}"', f'descr="{Path(path.group(1)).name}"')
        return drawing

    return re.sub(r"<w:drawing>.*?</w:drawing>", one, document_xml, flags=re.S)


def _properties(core_xml: str, title: str, author: str) -> str:
    for tag, value in (("dc:title", title), ("dc:creator", author)):
        element = f"<{tag}>{escape(value)}</{tag}>"
        if re.search(rf"<{tag}\b", core_xml):
            core_xml = re.sub(rf"<{tag}\b[^>]*?(/>|>.*?</{tag}>)", element, core_xml, flags=re.S)
        else:
            core_xml = core_xml.replace("</cp:coreProperties>", element + "</cp:coreProperties>")
    return core_xml


CODE_BLOCK_SIZE = '<w:sz w:val="16" /><w:szCs w:val="16" />'


def _listings(document_xml: str) -> str:
    def one(match: re.Match) -> str:
        return match.group(0).replace('<w:rStyle w:val="VerbatimChar" />', '<w:rStyle w:val="CodeBlockChar" />')

    return re.sub(r'<w:p><w:pPr><w:pStyle w:val="SourceCode" />.*?</w:p>', one, document_xml, flags=re.S)


def _token_styles(styles_xml: str) -> str:
    def one(match: re.Match) -> str:
        style = match.group(0)
        if "<w:rPr>" not in style:
            return style.replace("</w:style>", f"<w:rPr>{CODE_BLOCK_SIZE}</w:rPr></w:style>")
        # In the schema's order: after color, before highlight, underline and shading.
        rpr = re.search(r"<w:rPr>.*?</w:rPr>", style, re.S).group(0)
        at = re.search(r"<w:highlight\b|<w:u\b|<w:shd\b|</w:rPr>", rpr).start()
        return style.replace(rpr, rpr[:at] + CODE_BLOCK_SIZE + rpr[at:])

    return re.sub(r'<w:style [^>]*w:styleId="\w+Tok".*?</w:style>', one, styles_xml, flags=re.S)


def _settings(settings_xml: str) -> str:
    # Hyphenation of the justified Russian text, where the schema wants it: after defaultTabStop.
    settings_xml = re.sub(r"<w:autoHyphenation\s*/>", "", settings_xml)
    settings_xml = re.sub(r"(<w:defaultTabStop\b[^>]*/>)", r"\1<w:autoHyphenation/>", settings_xml, count=1)
    if "w:updateFields" in settings_xml:
        return settings_xml
    # CT_Settings is a sequence: updateFields comes before footnotePr, compat and rsids.
    for anchor in ("<w:footnotePr", "<w:endnotePr", "<w:compat", "<w:rsids", "</w:settings>"):
        if anchor in settings_xml:
            return settings_xml.replace(anchor, '<w:updateFields w:val="true"/>' + anchor, 1)
    return settings_xml


def apply(docx: Path, title: str, author: str) -> None:
    source = docx.with_suffix(".pandoc.docx")
    shutil.move(docx, source)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(docx, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                data = _listings(_pictures(_tables(data.decode("utf-8")))).encode("utf-8")
            elif item.filename == "word/styles.xml":
                data = _token_styles(data.decode("utf-8")).encode("utf-8")
            elif item.filename == "word/settings.xml":
                data = _settings(data.decode("utf-8")).encode("utf-8")
            elif item.filename == "docProps/core.xml":
                data = _properties(data.decode("utf-8"), title, author).encode("utf-8")
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    source.unlink()
