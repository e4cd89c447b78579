"""Placeholder screenshots and captures for testing the report pipeline without a browser run.

Writes one PNG per file listed in docs/screenshots.tsv: a page-like picture (header bar, text
lines, noise) of the size the real screenshot would have, so that compression and sizing are
exercised. Each carries a tEXt chunk that marks it as a placeholder, so scripts/report warns about
it and `scripts/report --final` refuses it. With --captures, also one text per `@capture NAME` of
the chapters, marked by its first line the same way. They go to temporary folders and are never
committed.

    python3 tests/report/placeholders.py OUT_DIR [--captures DIR] [--skip NAME]...
"""

from __future__ import annotations

import argparse
import csv
import random
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs/tools"))

from reportgen import captures  # noqa: E402
from reportgen.placeholders import CAPTURE_MARK, PICTURE_KEYWORD, PICTURE_TEXT  # noqa: E402


def _png(width: int, height: int, rows: list[bytes], mark: bool = True) -> bytes:
    """An RGB PNG; `mark` adds the tEXt chunk that tells scripts/report it is a placeholder."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + (chunk(b"tEXt", PICTURE_KEYWORD + b"\0" + PICTURE_TEXT) if mark else b"")
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _text_row(width: int, right: int, rng: random.Random) -> bytes:
    row = bytearray(b"\xff" * 3 * width)
    x = 32
    while x < right:
        word = rng.randint(3, 9) * 7
        for px in range(x, min(x + word, right)):
            if px % 7 in (1, 2, 4):
                shade = (70, 120, 190)[px % 3]
                row[3 * px : 3 * px + 3] = bytes((shade, shade, shade))
        x += word + 7
    return bytes(row)


def page(width: int, height: int, seed: int) -> bytes:
    """A page-like picture: a coloured header bar and lines of word-like grey strokes, so that it
    compresses about as well as a real screenshot of a simple page."""
    rng = random.Random(seed)
    white, header = b"\xff" * 3 * width, bytes((40, 70, 120)) * width
    rows = []
    text_lines = {}
    for top in range(90, height - 20, 28):
        variants = [_text_row(width, width - rng.randint(40, 400), rng) for _ in range(3)]
        for dy in range(12):
            text_lines[top + dy] = variants[dy % 3]
    for y in range(height):
        rows.append(header if y < 56 else text_lines.get(y, white))
    return _png(width, height, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--captures", type=Path, help="also write the captures the chapters name here")
    parser.add_argument("--skip", action="append", default=[], help="a listed file (or NAME.txt) to leave out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (ROOT / "docs/screenshots.tsv").open(encoding="utf-8", newline="") as f:
        names = [row[1] for row in csv.reader(f, delimiter="\t") if row and not row[0].startswith("#")][1:]
    for seed, name in enumerate(names):
        if name in args.skip:
            continue
        width, height = (390, 1100) if "phone" in name else (1366, 900)
        (args.out / name).write_bytes(page(width, height, seed))
    if args.captures:
        args.captures.mkdir(parents=True, exist_ok=True)
        for name in captures.named_in(sorted((ROOT / "docs/report").glob("*.md"))):
            file = captures.path(args.captures, name)
            if file.name not in args.skip:
                file.write_text(f"{CAPTURE_MARK}\nthe browser scenarios' {name} goes here\n", encoding="utf-8")


if __name__ == "__main__":
    main()
