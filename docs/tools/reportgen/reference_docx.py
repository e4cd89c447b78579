"""The reference document that gives the report its look.

Pandoc takes styles, page size, margins and footers from a "reference docx". We start from
pandoc's own default (so every style pandoc expects is present) and replace the styles that a
Russian university report cares about: Times New Roman 14 pt, 1.5 line spacing, a 1.25 cm first
line indent, A4 with 30/15/20/20 mm margins, black bold headings, centred figures with captions,
tables with borders and a smaller font, code in a small monospace font, and a page number in the
footer (not on the title page).
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

BODY_FONT = "Times New Roman"
CODE_FONT = "Courier New"

# Sizes are in half-points, lengths in twentieths of a point (twips): 567 twips = 1 cm.
BODY_SIZE = 28  # 14 pt
SMALL_SIZE = 24  # 12 pt: tables, captions
CODE_SIZE = 16  # 8 pt: listings (the appendices' code is formatted for 100 columns)
CODE_INLINE_SIZE = 22  # 11 pt: code words in the text and in tables
LINE_ONE_AND_HALF = 360
LINE_SINGLE = 240
INDENT = 709  # 1.25 cm

DOC_DEFAULTS = f"""<w:docDefaults>
    <w:rPrDefault><w:rPr>
      <w:rFonts w:ascii="{BODY_FONT}" w:hAnsi="{BODY_FONT}" w:eastAsia="{BODY_FONT}" w:cs="{BODY_FONT}"/>
      <w:sz w:val="{BODY_SIZE}"/><w:szCs w:val="{BODY_SIZE}"/>
      <w:lang w:val="ru-RU" w:eastAsia="en-US" w:bidi="ar-SA"/>
    </w:rPr></w:rPrDefault>
    <w:pPrDefault><w:pPr>
      <w:spacing w:before="0" w:after="0" w:line="{LINE_ONE_AND_HALF}" w:lineRule="auto"/>
    </w:pPr></w:pPrDefault>
  </w:docDefaults>"""


def _para(
    style_id: str,
    name: str,
    ppr: str = "",
    rpr: str = "",
    based_on: str = "Normal",
    nxt: str = "",
    custom: bool = False,
) -> str:
    custom_attr = ' w:customStyle="1"' if custom else ""
    next_el = f'<w:next w:val="{nxt}"/>' if nxt else ""
    based = f'<w:basedOn w:val="{based_on}"/>' if based_on else ""
    return (
        f'<w:style w:type="paragraph"{custom_attr} w:styleId="{style_id}">'
        f'<w:name w:val="{name}"/>{based}{next_el}<w:qFormat/>'
        f"<w:pPr>{ppr}</w:pPr><w:rPr>{rpr}</w:rPr></w:style>"
    )


def _heading(level: int, size: int, extra_ppr: str = "", extra_rpr: str = "") -> str:
    return _para(
        f"Heading{level}",
        f"heading {level}",
        ppr=(
            "<w:keepNext/><w:keepLines/>"
            + extra_ppr
            + f'<w:spacing w:before="360" w:after="240" w:line="{LINE_ONE_AND_HALF}" w:lineRule="auto"/>'
            f'<w:ind w:firstLine="{INDENT}"/><w:outlineLvl w:val="{level - 1}"/>'
        ),
        # Run properties in the schema's order: b, i, color, sz.
        rpr=f'<w:b/><w:bCs/>{extra_rpr}<w:color w:val="000000"/><w:sz w:val="{size}"/><w:szCs w:val="{size}"/>',
        nxt="BodyText",
    )


CODE_RPR = (
    f'<w:rFonts w:ascii="{CODE_FONT}" w:hAnsi="{CODE_FONT}" w:eastAsia="{CODE_FONT}" w:cs="{CODE_FONT}"/>'
    f'<w:sz w:val="{CODE_SIZE}"/><w:szCs w:val="{CODE_SIZE}"/>'
)

# Contents lines: a little tighter than the body, page numbers right-aligned after dots.
TOC_LINE = (
    '<w:tabs><w:tab w:val="right" w:leader="dot" w:pos="9345"/></w:tabs><w:spacing w:line="288" w:lineRule="auto"/>'
)

STYLES = [
    _para("Normal", "Normal", based_on=""),
    _para(
        "BodyText",
        "Body Text",
        ppr=f'<w:spacing w:before="0" w:after="0"/><w:ind w:firstLine="{INDENT}"/><w:jc w:val="both"/>',
    ),
    _para("FirstParagraph", "First Paragraph", based_on="BodyText", nxt="BodyText", custom=True),
    # Tight lists and table cells. No size or spacing here, so that inside a table the table
    # style's smaller font and single spacing apply, and in a list the body's.
    _para("Compact", "Compact", ppr='<w:spacing w:before="0" w:after="0"/>', custom=True),
    _heading(1, 32, extra_ppr="<w:pageBreakBefore/>"),
    _heading(2, 28),
    _heading(3, 28, extra_rpr="<w:i/><w:iCs/>"),
    _para(
        "TOCHeading",
        "TOC Heading",
        based_on="Normal",
        nxt="BodyText",
        ppr='<w:keepNext/><w:pageBreakBefore/><w:spacing w:before="0" w:after="240"/><w:jc w:val="center"/>',
        rpr=f'<w:b/><w:bCs/><w:caps/><w:sz w:val="{BODY_SIZE + 4}"/><w:szCs w:val="{BODY_SIZE + 4}"/>',
    ),
    _para(
        "TOC1",
        "toc 1",
        nxt="BodyText",
        ppr=TOC_LINE,
    ),
    _para(
        "TOC2",
        "toc 2",
        nxt="BodyText",
        ppr=TOC_LINE + '<w:ind w:left="284"/>',  # pPr order: tabs, spacing, ind
    ),
    _para(
        "TOC3",
        "toc 3",
        nxt="BodyText",
        ppr='<w:tabs><w:tab w:val="right" w:leader="dot" w:pos="9345"/></w:tabs><w:ind w:left="567"/>',
    ),
    _para(
        "Caption",
        "caption",
        ppr=f'<w:spacing w:before="120" w:after="240" w:line="{LINE_SINGLE}" w:lineRule="auto"/><w:jc w:val="center"/>',
        rpr=f'<w:sz w:val="{SMALL_SIZE}"/><w:szCs w:val="{SMALL_SIZE}"/>',
    ),
    _para("ImageCaption", "Image Caption", based_on="Caption", custom=True),
    # Russian convention: the table caption stands above the table, flush left.
    _para(
        "TableCaption",
        "Table Caption",
        based_on="Caption",
        custom=True,
        ppr='<w:keepNext/><w:spacing w:before="240" w:after="60"/><w:jc w:val="left"/>',
    ),
    _para(
        "Figure",
        "Figure",
        custom=True,
        ppr=f'<w:keepNext/><w:spacing w:before="240" w:line="{LINE_SINGLE}" w:lineRule="auto"/><w:jc w:val="center"/>',
    ),
    _para("CaptionedFigure", "Captioned Figure", based_on="Figure", custom=True, ppr="<w:keepNext/>"),
    _para(
        "SourceCode",
        "Source Code",
        custom=True,
        ppr=(
            '<w:pBdr><w:left w:val="single" w:sz="4" w:space="4" w:color="A0A0A0"/></w:pBdr>'
            f'<w:wordWrap w:val="1"/><w:spacing w:before="60" w:after="120" w:line="{LINE_SINGLE}" w:lineRule="auto"/>'
            '<w:ind w:left="113"/>'
        ),
        rpr=CODE_RPR,
    ),
    # Title page paragraphs, used through custom-style divs in the Markdown.
    _para("TitleCenter", "Title Center", custom=True, ppr='<w:jc w:val="center"/>'),
    _para(
        "TitleHeading",
        "Title Heading",
        custom=True,
        ppr='<w:spacing w:before="2400" w:after="120"/><w:jc w:val="center"/>',
        rpr=f'<w:b/><w:bCs/><w:caps/><w:sz w:val="{BODY_SIZE + 4}"/><w:szCs w:val="{BODY_SIZE + 4}"/>',
    ),
    _para("TitleSigns", "Title Signatures", custom=True, ppr='<w:spacing w:before="2400"/><w:ind w:left="4820"/>'),
    _para("TitleFooter", "Title Footer", custom=True, ppr='<w:spacing w:before="3000"/><w:jc w:val="center"/>'),
    # Table cells (set by postprocess.py) and the spacer after each table.
    _para(
        "TableText",
        "Table Text",
        custom=True,
        ppr=f'<w:spacing w:before="0" w:after="0" w:line="{LINE_SINGLE}" w:lineRule="auto"/><w:jc w:val="left"/>',
        rpr=f'<w:sz w:val="{SMALL_SIZE}"/><w:szCs w:val="{SMALL_SIZE}"/>',
    ),
    _para(
        "TableSpacer",
        "Table Spacer",
        custom=True,
        ppr='<w:spacing w:before="0" w:after="0" w:line="200" w:lineRule="exact"/>',
        rpr='<w:sz w:val="12"/><w:szCs w:val="12"/>',
    ),
    # A plain left-aligned paragraph without indent (lists of variables, notes under figures).
    _para("Plain", "Plain", custom=True, ppr='<w:jc w:val="left"/>'),
    # The one line above each listing of the appendices that says what the file is.
    _para(
        "ListingCaption",
        "Listing Caption",
        custom=True,
        ppr=f'<w:keepNext/><w:spacing w:before="60" w:after="60" w:line="{LINE_SINGLE}" w:lineRule="auto"/><w:jc w:val="left"/>',
        rpr=f'<w:i/><w:iCs/><w:sz w:val="{SMALL_SIZE}"/><w:szCs w:val="{SMALL_SIZE}"/>',
    ),
]

CHAR_STYLES = [
    f'<w:style w:type="character" w:customStyle="1" w:styleId="VerbatimChar"><w:name w:val="Verbatim Char"/>'
    f'<w:basedOn w:val="DefaultParagraphFont"/><w:rPr>'
    f'<w:rFonts w:ascii="{CODE_FONT}" w:hAnsi="{CODE_FONT}" w:eastAsia="{CODE_FONT}" w:cs="{CODE_FONT}"/>'
    f'<w:sz w:val="{CODE_INLINE_SIZE}"/><w:szCs w:val="{CODE_INLINE_SIZE}"/></w:rPr></w:style>',
    f'<w:style w:type="character" w:customStyle="1" w:styleId="TableCode"><w:name w:val="Table Code"/>'
    f'<w:basedOn w:val="DefaultParagraphFont"/><w:rPr>'
    f'<w:rFonts w:ascii="{CODE_FONT}" w:hAnsi="{CODE_FONT}" w:eastAsia="{CODE_FONT}" w:cs="{CODE_FONT}"/>'
    f'<w:sz w:val="{CODE_INLINE_SIZE}"/><w:szCs w:val="{CODE_INLINE_SIZE}"/></w:rPr></w:style>',
    '<w:style w:type="character" w:customStyle="1" w:styleId="CodeBlockChar"><w:name w:val="Code Block Char"/>'
    f'<w:basedOn w:val="DefaultParagraphFont"/><w:rPr>{CODE_RPR}</w:rPr></w:style>',
    '<w:style w:type="character" w:styleId="Hyperlink"><w:name w:val="Hyperlink"/>'
    '<w:basedOn w:val="DefaultParagraphFont"/><w:rPr><w:color w:val="000000"/></w:rPr></w:style>',
]

BORDER = '<w:{side} w:val="single" w:sz="4" w:space="0" w:color="000000"/>'
TABLE_STYLE = (
    '<w:style w:type="table" w:default="1" w:styleId="Table"><w:name w:val="Table"/>'
    '<w:basedOn w:val="TableNormal"/><w:qFormat/>'
    '<w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblBorders>'
    + "".join(BORDER.format(side=s) for s in ("top", "left", "bottom", "right", "insideH", "insideV"))
    + '</w:tblBorders><w:tblCellMar><w:top w:w="28" w:type="dxa"/><w:left w:w="85" w:type="dxa"/>'
    '<w:bottom w:w="28" w:type="dxa"/><w:right w:w="85" w:type="dxa"/></w:tblCellMar></w:tblPr>'
    '<w:tblStylePr w:type="firstRow"><w:rPr><w:b/><w:bCs/></w:rPr>'
    '<w:tcPr><w:shd w:val="clear" w:color="auto" w:fill="EDEDED"/></w:tcPr></w:tblStylePr>'
    "</w:style>"
)

FOOTER = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:ftr xmlns:w="{W_NS}" xmlns:r="{R_NS}">'
    '<w:p><w:pPr><w:spacing w:line="240" w:lineRule="auto"/><w:jc w:val="center"/></w:pPr>'
    '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>'
    '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
    "</w:p></w:ftr>"
)
EMPTY_FOOTER = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:ftr xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:p/></w:ftr>'
)

# A4, margins left 30 mm, right 15 mm, top and bottom 20 mm; the first page (the title page) uses
# the empty footer.
SECTION = (
    '<w:sectPr><w:footerReference w:type="default" r:id="rIdReportFooter"/>'
    '<w:footerReference w:type="first" r:id="rIdReportFooterFirst"/>'
    '<w:pgSz w:w="11906" w:h="16838"/>'
    '<w:pgMar w:top="1134" w:right="850" w:bottom="1134" w:left="1701" w:header="709" w:footer="567" w:gutter="0"/>'
    "<w:titlePg/></w:sectPr>"
)

FOOTER_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer"
FOOTER_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"

# The page's text width in twips (A4 width minus the margins); figures are sized against it.
TEXT_WIDTH_CM = (11906 - 1701 - 850) / 567


def _replace_styles(styles_xml: str) -> str:
    replaced = {re.search(r'w:styleId="([^"]+)"', s).group(1) for s in STYLES + CHAR_STYLES + [TABLE_STYLE]}
    for style_id in replaced:
        styles_xml = re.sub(rf'<w:style [^>]*w:styleId="{style_id}"[^>]*>.*?</w:style>\s*', "", styles_xml, flags=re.S)
    styles_xml = re.sub(r"<w:docDefaults>.*?</w:docDefaults>", DOC_DEFAULTS, styles_xml, flags=re.S)
    return styles_xml.replace("</w:styles>", "".join(STYLES + CHAR_STYLES + [TABLE_STYLE]) + "</w:styles>")


def _replace_section(document_xml: str) -> str:
    if f'xmlns:r="{R_NS}"' not in document_xml[:2000]:
        document_xml = document_xml.replace("<w:document ", f'<w:document xmlns:r="{R_NS}" ', 1)
    document_xml = re.sub(r"<w:sectPr\s*/>|<w:sectPr>.*?</w:sectPr>", "", document_xml, flags=re.S)
    return document_xml.replace("</w:body>", SECTION + "</w:body>")


def _add_footer_relations(rels_xml: str) -> str:
    rels = (
        f'<Relationship Id="rIdReportFooter" Type="{FOOTER_TYPE}" Target="footer1.xml"/>'
        f'<Relationship Id="rIdReportFooterFirst" Type="{FOOTER_TYPE}" Target="footer2.xml"/>'
    )
    return rels_xml.replace("</Relationships>", rels + "</Relationships>")


def _add_footer_types(types_xml: str) -> str:
    types = "".join(
        f'<Override PartName="/word/{name}" ContentType="{FOOTER_CONTENT_TYPE}"/>'
        for name in ("footer1.xml", "footer2.xml")
    )
    return types_xml.replace("</Types>", types + "</Types>")


def _adjust_settings(settings_xml: str) -> str:  # kept by pandoc only in part; see postprocess.py
    # Hyphenate Russian text so justified lines stay even. (Updating fields on opening is set
    # by postprocess.py: pandoc does not keep it from here.)
    extra = "<w:autoHyphenation/>"
    return re.sub(r"(<w:zoom [^>]*/>)", r"\1" + extra, settings_xml, count=1)


def build(out: Path, pandoc: str = "pandoc") -> Path:
    """Writes the adjusted reference docx to `out` and returns it."""
    default = subprocess.run(
        [pandoc, "--print-default-data-file", "reference.docx"], check=True, capture_output=True
    ).stdout
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".default.docx")
    tmp.write_bytes(default)
    edits = {
        "word/styles.xml": _replace_styles,
        "word/document.xml": _replace_section,
        "word/_rels/document.xml.rels": _add_footer_relations,
        "[Content_Types].xml": _add_footer_types,
        "word/settings.xml": _adjust_settings,
    }
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename in edits:
                data = edits[item.filename](data.decode("utf-8")).encode("utf-8")
            dst.writestr(item.filename, data)
        dst.writestr("word/footer1.xml", FOOTER)
        dst.writestr("word/footer2.xml", EMPTY_FOOTER)
    tmp.unlink()
    return out
