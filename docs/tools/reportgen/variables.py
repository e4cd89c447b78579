"""The report's variables: defaults from `docs/report.env`, overridden by the environment."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from collections.abc import Mapping

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")

# Characters that cannot be part of a file name on any of the systems the files travel to.
_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\s]+')


class VariablesError(ValueError):
    """`docs/report.env` has a line that is not `NAME=value`."""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def load(defaults_file: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Every `REPORT_*` name of the defaults file, with the environment's value when it is set."""
    values: dict[str, str] = {}
    for number, raw in enumerate(defaults_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise VariablesError(f"{defaults_file}:{number}: expected NAME=value, got {raw!r}")
        values[match.group(1)] = _unquote(match.group(2))
    for name in list(values):
        if environ.get(name):
            values[name] = environ[name]
    if not values.get("REPORT_YEAR"):
        values["REPORT_YEAR"] = str(datetime.date.today().year)
    return values


def output_stem(values: Mapping[str, str]) -> str:
    """`Фамилия_Имя_webdev_lab_1`, the name the assignment asks for both files."""
    parts = [_UNSAFE_IN_NAME.sub("_", values[key].strip()) for key in ("REPORT_SURNAME", "REPORT_NAME")]
    return "_".join(parts + ["webdev_lab_1"])


def substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """Replaces `{{REPORT_X}}` with its value; an unknown name is an error that names the file."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise VariablesError(f"{where}: unknown variable {{{{{name}}}}} (define it in docs/report.env)")
        return values[name]

    return re.sub(r"\{\{([A-Z][A-Z0-9_]*)\}\}", one, text)
