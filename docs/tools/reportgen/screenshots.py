"""The screenshot chapter: every picture listed in `docs/screenshots.tsv`, with its caption.

The browser scenarios (`e2e/run`) save the screenshots; the list says which of them the report
shows, under which heading and caption, and which it leaves out and why (group `-`). A listed file
that is missing stops the build with the command that makes it, because a report without its
screenshots is not one the assignment accepts.

Every screenshot is printed at one scale, that of a 1366-pixel-wide desktop page across the text
width, so that all of them read alike; a picture up to half a page tall shares its page with
another (never more than two to a page; one a little taller is shrunk to share one), a taller one
gets up to a page of its own, and one taller still is shrunk to fit it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import images

# The text is 16.5 cm wide and 25.7 cm tall; a caption of two or three lines takes about 2 cm.
MAX_WIDTH_CM = 16.4
HALF_PAGE_CM = 10.2  # two pictures with their captions fit on a page
SHRINK_TO_HALF = 1.3  # a picture at most this much taller than half a page is shrunk to share one
FULL_PAGE_CM = 21.0  # one picture with its caption and the subsection's heading
DESKTOP_WIDTH_PX = 1366
SCALE = MAX_WIDTH_CM / (DESKTOP_WIDTH_PX / images.SCREEN_DPI * images.CM_PER_INCH)
LEFT_OUT = "-"


class MissingScreenshots(RuntimeError):
    """Some listed screenshots are not in the screenshots folder."""


@dataclass
class Screenshot:
    group: str
    file: str
    caption: str


def load(list_file: Path) -> list[Screenshot]:
    """The screenshots the report shows, in order."""
    return [shot for shot in load_all(list_file) if shot.group != LEFT_OUT]


def left_out(list_file: Path) -> list[Screenshot]:
    """The screenshots the report leaves out on purpose; `caption` says why."""
    return [shot for shot in load_all(list_file) if shot.group == LEFT_OUT]


def load_all(list_file: Path) -> list[Screenshot]:
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


def display_width_cm(path: Path) -> float:
    """The printed width: the common scale, and within a page's height (see the module's doc)."""
    width, height = images.png_size(path)
    natural = width / images.SCREEN_DPI * images.CM_PER_INCH
    shown = min(natural * SCALE, MAX_WIDTH_CM)
    if HALF_PAGE_CM < shown * height / width <= HALF_PAGE_CM * SHRINK_TO_HALF:
        shown = HALF_PAGE_CM * width / height  # a little smaller, to share the page
    elif shown * height / width > FULL_PAGE_CM:
        shown = FULL_PAGE_CM * width / height
    return round(shown, 2)


def unlisted(list_file: Path, folder: Path) -> list[str]:
    """Screenshots in the folder that the list neither shows nor leaves out with a reason."""
    known = {shot.file for shot in load_all(list_file)}
    return sorted(p.name for p in folder.glob("*.png") if p.name not in known)


def markdown(shots: list[Screenshot], folder: Path, out_dir: Path, level: int = 0) -> str:
    out, group = [], None
    for shot in shots:
        if shot.group != group:
            group = shot.group
            out.append(f"## {group}\n")
        picture = images.compress_screenshot(folder / shot.file, out_dir / shot.file, level)
        width = display_width_cm(picture)
        stem = Path(shot.file).stem
        out.append(f"![{shot.caption}]({picture.as_posix()}){{#fig:shot-{stem} width={width}cm}}\n")
    return "\n".join(out)
