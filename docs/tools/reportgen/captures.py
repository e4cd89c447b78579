"""What the browser scenarios saw during their run, quoted in the report (`@capture NAME`): the
ticket request and its JSON answer, the WebSocket handshake's headers as Chromium sent and received
them, an excerpt of nginx's access log. `e2e/run` writes each as `e2e/artifacts/captures/NAME.txt`
(tickets and cookies cut short); the report embeds it as a listing. A capture a chapter names that
is missing stops the build with the command that makes it, as a missing screenshot does.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import live_data

_DIRECTIVE = re.compile(r"^@capture ([\w.-]+)\s*$", re.M)


class MissingCaptures(RuntimeError):
    """Some captures the chapters name are not in the captures folder."""


def named_in(chapters: list[Path]) -> list[str]:
    """The capture names of every `@capture NAME` line, in report order."""
    return [name for chapter in chapters for name in _DIRECTIVE.findall(chapter.read_text(encoding="utf-8"))]


def path(folder: Path, name: str) -> Path:
    return folder / f"{name}.txt"


def check_present(names: list[str], folder: Path) -> None:
    missing = [path(folder, name).name for name in names if not path(folder, name).is_file()]
    if missing:
        raise MissingCaptures(
            f"{len(missing)} of {len(names)} captures named by @capture in docs/report/ are missing from "
            f"{folder}:\n  "
            + "\n  ".join(missing)
            + "\nThe browser scenarios write them: run `e2e/run` first (or `scripts/report --with-e2e`), "
            "or point --captures at a folder that has them."
        )


def markdown(name: str, folder: Path) -> str:
    """The capture as a listing (a fenced block in the report's listing style)."""
    return live_data.markdown(path(folder, name).read_text(encoding="utf-8"))
