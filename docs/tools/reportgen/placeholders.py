"""Placeholders a report may still hold, so that none goes out unnoticed: the `REPORT_*` values
that `docs/report.env` ships with (`Наименование университета`, the file name `Фамилия_Имя_...`,
whether the teacher agreed to the deviation from the assignment), and the stand-in screenshots and captures `tests/report/placeholders.py` makes
for testing the pipeline. `scripts/report` prints a boxed warning naming each; `scripts/report --final` refuses
to build while any is left.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

# The values `docs/report.env` ships with, each to be replaced by the author's own data. The other
# variables (course, topic, city, ...) have defaults that are right for this work.
TITLE_PAGE = {
    "REPORT_SURNAME": "Фамилия",
    "REPORT_NAME": "Имя",
    "REPORT_PATRONYMIC": "Отчество",
    "REPORT_GROUP": "Группа",
    "REPORT_UNIVERSITY": "Наименование университета",
    "REPORT_DEPARTMENT": "Кафедра «Наименование кафедры»",
    "REPORT_TEACHER": "Фамилия И. О.",
    # Only the author knows whether the teacher agreed to Rust instead of Python/FastAPI.
    "REPORT_AGREEMENT": "согласование с преподавателем: УКАЖИТЕ, СОГЛАСОВАНА ЛИ ЗАМЕНА",
}

# tests/report/placeholders.py writes this tEXt chunk into every picture it draws.
PICTURE_KEYWORD = b"Software"
PICTURE_TEXT = b"webchat report placeholder (tests/report/placeholders.py)"

# ... and this first line into every capture it writes.
CAPTURE_MARK = "# webchat report placeholder (tests/report/placeholders.py)"


def variables_in_use(values: Mapping[str, str]) -> list[str]:
    """The `REPORT_*` names whose value is still the shipped placeholder, in title-page order."""
    return [name for name, placeholder in TITLE_PAGE.items() if values.get(name, "").strip() == placeholder]


def is_placeholder_picture(path: Path) -> bool:
    """Whether the PNG carries the mark of tests/report/placeholders.py (read up to its pixels)."""
    with path.open("rb") as png:
        if png.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
        while header := png.read(8):
            if len(header) < 8:
                return False
            length, kind = struct.unpack(">I4s", header)
            if kind in (b"IDAT", b"IEND"):
                return False
            data = png.read(length)
            png.seek(4, 1)  # CRC
            if kind == b"tEXt" and data == PICTURE_KEYWORD + b"\0" + PICTURE_TEXT:
                return True
    return False


def pictures_in_use(files: Sequence[str], folder: Path) -> list[str]:
    """The listed screenshots (those present) that are placeholder pictures."""
    return [name for name in files if (folder / name).is_file() and is_placeholder_picture(folder / name)]


def captures_in_use(files: Sequence[Path]) -> list[str]:
    """The file names of the captures (those present) that tests/report/placeholders.py wrote."""
    return [
        file.name
        for file in files
        if file.is_file() and file.read_text(encoding="utf-8").startswith(CAPTURE_MARK + "\n")
    ]


def boxed(lines: Sequence[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "═" * (width + 2)
    return "\n".join([f"╔{rule}╗", *(f"║ {line.ljust(width)} ║" for line in lines), f"╚{rule}╝"])


def report(values: Mapping[str, str], variables: Sequence[str], pictures: Sequence[str], total_pictures: int, final: bool) -> str:
    """The box that says which placeholders are in use and how to replace them; `final` words it as
    the reason the build was refused."""
    lines = [
        "REFUSED (--final): the report still holds placeholders" if final else "WARNING: the report still holds placeholders",
        "",
    ]
    if variables:
        lines.append("The author's data (title page, file names, agreement) — set these REPORT_* variables:")
        lines.extend(f"  {name}={values.get(name, '')!r}" for name in variables)
        lines.append("  in docs/report.env or the environment, e.g.")
        lines.append("  REPORT_SURNAME=Иванов REPORT_NAME=Иван REPORT_GROUP=ИУ5-31М scripts/report")
    if pictures:
        if variables:
            lines.append("")
        lines.append(f"Screenshots and captures — {len(pictures)} of {total_pictures} are placeholders")
        lines.append("  (tests/report/placeholders.py): take the real ones with e2e/run")
        lines.append("  or scripts/report --with-e2e.")
    lines.append("")
    if final:
        lines.append("Nothing was written. Without --final it builds, for tests, with this warning.")
    else:
        lines.append("Building is allowed for tests; scripts/report --final refuses until none is left.")
    return boxed(lines)
