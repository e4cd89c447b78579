"""How many pages the report takes as LibreOffice lays it out, and how many of them the appendices.

Renders the DOCX to PDF with LibreOffice (`soffice --headless --convert-to pdf`, a throw-away
profile) and reads the PDF's page tree and its outline (LibreOffice writes one bookmark per
heading) with the standard library: the appendices start at the page of the first bookmark whose
title begins with "Приложение". Word lays out the same DOCX within a page or two of LibreOffice,
whose Liberation fonts have the metrics of Times New Roman and Courier New.

    python3 tests/report/pages.py REPORT.docx [--max-pages N] [--max-appendix-pages N] [--pdf-dir DIR]

Prints `pages=<total> appendices=<pages> first_appendix_page=<n>`; exits 1 when over a limit, 2 when
LibreOffice is not installed or fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_OBJECT = re.compile(rb"(\d+)\s+0\s+obj\b(.*?)\bendobj", re.S)
_REF = r"(\d+)\s+0\s+R"


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def render(docx: Path, out_dir: Path) -> Path:
    binary = soffice()
    if binary is None:
        raise FileNotFoundError("LibreOffice (soffice) is not installed")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-lo-profile-") as profile:
        result = subprocess.run(
            [
                binary,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf",
                "--outdir",
                str(out_dir),
                str(docx),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    pdf = out_dir / (docx.stem + ".pdf")
    if result.returncode != 0 or not pdf.is_file():
        raise RuntimeError(f"LibreOffice could not render {docx.name}: {result.stdout}{result.stderr}")
    return pdf


def _objects(data: bytes) -> dict[int, str]:
    # Page dictionaries and outline items are plain (LibreOffice does not put them in object
    # streams); stream contents are binary and are cut off, as nothing here needs them.
    out = {}
    for match in _OBJECT.finditer(data):
        body = match.group(2).split(b"stream", 1)[0]
        out[int(match.group(1))] = body.decode("latin-1")
    return out


def _pdf_string(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("<"):
        data = bytes.fromhex(re.sub(r"\s", "", raw[1:-1]))
        return data[2:].decode("utf-16-be") if data.startswith(b"\xfe\xff") else data.decode("latin-1")
    body = raw[1:-1]
    body = re.sub(r"\\([()\\])", r"\1", body)
    data = body.encode("latin-1")
    return data[2:].decode("utf-16-be", errors="replace") if data.startswith(b"\xfe\xff") else body


def _ref(body: str, key: str) -> int | None:
    match = re.search(rf"/{key}\s+{_REF}", body)
    return int(match.group(1)) if match else None


def _pages(objects: dict[int, str], node: int) -> list[int]:
    body = objects[node]
    if re.search(r"/Type\s*/Page\b(?!s)", body):
        return [node]
    kids = re.search(r"/Kids\s*\[(.*?)\]", body, re.S)
    out: list[int] = []
    for kid in re.findall(_REF, kids.group(1) if kids else ""):
        out += _pages(objects, int(kid))
    return out


def _title(body: str) -> str:
    match = re.search(r"/Title\s*(<[0-9A-Fa-f\s]*>|\((?:\\.|[^\\)])*\))", body, re.S)
    return _pdf_string(match.group(1)) if match else ""


def _outline(objects: dict[int, str], first: int | None) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    item = first
    while item is not None:
        body = objects[item]
        dest = re.search(rf"/D(?:est)?\s*\[\s*{_REF}", body)
        out.append((_title(body), int(dest.group(1)) if dest else None))
        out += _outline(objects, _ref(body, "First"))
        item = _ref(body, "Next")
    return out


def measure(pdf: Path) -> tuple[int, int | None, list[tuple[str, int | None]]]:
    """Total pages, the 1-based page where the first appendix starts (None without one), and the
    outline as (title, page)."""
    objects = _objects(pdf.read_bytes())
    catalog = next(body for body in objects.values() if re.search(r"/Type\s*/Catalog\b", body))
    pages = _pages(objects, _ref(catalog, "Pages"))
    index = {obj: number for number, obj in enumerate(pages, start=1)}
    outlines = _ref(catalog, "Outlines")
    entries = _outline(objects, _ref(objects[outlines], "First")) if outlines else []
    outline = [(title, index.get(obj) if obj is not None else None) for title, obj in entries]
    appendix = next((page for title, page in outline if title.startswith("Приложение")), None)
    return len(pages), appendix, outline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docx", type=Path)
    parser.add_argument("--max-pages", type=int)
    parser.add_argument("--max-appendix-pages", type=int)
    parser.add_argument("--pdf-dir", type=Path, help="keep the PDF here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-pdf-") as tmp:
        try:
            pdf = render(args.docx, args.pdf_dir or Path(tmp))
        except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        total, first_appendix, _ = measure(pdf)
    appendix_pages = total - first_appendix + 1 if first_appendix else 0
    print(f"pages={total} appendices={appendix_pages} first_appendix_page={first_appendix or '-'}")
    problems = []
    if args.max_pages is not None and total > args.max_pages:
        problems.append(f"the report takes {total} pages in LibreOffice, over the budget of {args.max_pages}")
    if args.max_appendix_pages is not None and appendix_pages > args.max_appendix_pages:
        problems.append(
            f"the appendices take {appendix_pages} pages (from page {first_appendix}), "
            f"over the budget of {args.max_appendix_pages}"
        )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
