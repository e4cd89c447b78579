"""The screenshot chapter: every picture listed in `docs/screenshots.tsv`, with its caption.

The browser scenarios (`e2e/run`) save the screenshots; the list says which of them the report
shows, under which heading and caption. A listed file that is missing stops the build with the
command that makes it, because a report without its screenshots is not one the assignment accepts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import images

MAX_WIDTH_CM = 16.0
MAX_HEIGHT_CM = 17.0


class MissingScreenshots(RuntimeError):
    """Some listed screenshots are not in the screenshots folder."""


@dataclass
class Screenshot:
    group: str
    file: str
    caption: str


def load(list_file: Path) -> list[Screenshot]:
    with list_file.open(encoding="utf-8", newline="") as f:
        rows = [row for row in csv.reader(f, delimiter="\t") if row and not row[0].startswith("#")]
    header, body = rows[0], rows[1:]
    if header != ["group", "file", "caption"]:
        raise ValueError(f"{list_file}: the first line must be the header group<TAB>file<TAB>caption")
    shots = []
    for number, row in enumerate(body, start=2):
        if len(row) != 3 or not all(cell.strip() for cell in row):
            raise ValueError(f"{list_file}: row {number} needs three non-empty tab-separated cells: {row!r}")
        shots.append(Screenshot(*(cell.strip() for cell in row)))
    return shots


def check_present(shots: list[Screenshot], folder: Path) -> None:
    missing = [s.file for s in shots if not (folder / s.file).is_file()]
    if missing:
        raise MissingScreenshots(
            f"{len(missing)} of {len(shots)} screenshots listed in docs/screenshots.tsv are missing from "
            f"{folder}:\n  "
            + "\n  ".join(missing)
            + "\nThe browser scenarios take them: run `e2e/run` first (or `scripts/report --with-e2e`), "
            "or point --screenshots at a folder that has them."
        )


def markdown(shots: list[Screenshot], folder: Path, out_dir: Path, level: int = 0) -> str:
    out, group = [], None
    for shot in shots:
        if shot.group != group:
            group = shot.group
            out.append(f"## {group}\n")
        picture = images.compress_screenshot(folder / shot.file, out_dir / shot.file, level)
        width = images.display_width_cm(picture, images.SCREEN_DPI, MAX_WIDTH_CM, MAX_HEIGHT_CM)
        stem = Path(shot.file).stem
        out.append(f"![{shot.caption}]({picture.as_posix()}){{#fig:shot-{stem} width={width}cm}}\n")
    return "\n".join(out)
