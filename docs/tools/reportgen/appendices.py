"""The appendices: the key source files, read from the repository when the report is built.

`docs/appendices.txt` lists them. A line `== Title` opens an appendix (lettered А, Б, В, ... as
GOST 7.32 asks: without Ё, З, Й, О, Ч, Ъ, Ы, Ь); the lines after it are paths or glob patterns
relative to the repository root, taken in order, each file once; a line `!pattern` leaves the
matching files out wherever they would come in. A pattern that matches nothing is an error, so a
renamed file cannot silently drop out of the report.

A Rust file's unit tests (a trailing `#[cfg(test)] mod tests { ... }`) are left out of the listing
with a note: they are in the ZIP archive, and the report keeps to the code that runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LETTERS = "АБВГДЕЖИКЛМНПРСТУФХЦШЩЭЮЯ"

LANGUAGES = {
    ".rs": "rust",
    ".toml": "toml",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".sh": "bash",
    ".json": "json",
    ".py": "python",
    ".html": "html",
    ".css": "css",
    ".conf": "",
    ".md": "",
}


class AppendixError(ValueError):
    """`docs/appendices.txt` names something that is not in the repository."""


@dataclass
class Appendix:
    letter: str
    title: str
    files: list[str]


def _language(path: str) -> str:
    name = Path(path).name
    if name == "Dockerfile" or name.endswith(".Dockerfile"):
        return "dockerfile"
    if name in ("run", "report", "test", "stack") or Path(path).suffix == "":
        return "bash"
    return LANGUAGES.get(Path(path).suffix, "")


def _expand(root: Path, pattern: str) -> list[str]:
    if any(ch in pattern for ch in "*?["):
        return sorted(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
    return [pattern] if (root / pattern).is_file() else []


def load(list_file: Path, root: Path) -> list[Appendix]:
    appendices: list[Appendix] = []
    lines = list(enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1))
    seen: set[str] = set()
    for number, raw in lines:
        if raw.strip().startswith("!"):
            excluded = _expand(root, raw.strip()[1:].strip())
            if not excluded:
                raise AppendixError(f"{list_file}:{number}: {raw.strip()!r} matches no file in the repository")
            seen.update(excluded)
    for number, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("!"):
            continue
        if line.startswith("=="):
            if len(appendices) == len(LETTERS):
                raise AppendixError(f"{list_file}:{number}: too many appendices")
            appendices.append(Appendix(LETTERS[len(appendices)], line[2:].strip(), []))
            continue
        if not appendices:
            raise AppendixError(f"{list_file}:{number}: a file before the first `== Title` line")
        matches = _expand(root, line)
        if not matches:
            raise AppendixError(f"{list_file}:{number}: {line!r} matches no file in the repository")
        for path in matches:
            if path not in seen:
                seen.add(path)
                appendices[-1].files.append(path)
    return appendices


def _fence(text: str) -> str:
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def split_unit_tests(path: str, text: str) -> tuple[str, int]:
    """The code of a Rust file without its trailing unit-test module, and how many lines that
    module had (0 when there is none, or when it is not the last thing in the file)."""
    if not path.endswith(".rs"):
        return text, 0
    lines = text.split("\n")
    for start, line in enumerate(lines):
        if line == "#[cfg(test)]" and start + 1 < len(lines) and lines[start + 1].startswith("mod tests"):
            depth, opened = 0, False
            for end in range(start + 1, len(lines)):
                depth += lines[end].count("{") - lines[end].count("}")
                opened = opened or "{" in lines[end]
                if opened and depth == 0:
                    if all(not rest.strip() for rest in lines[end + 1 :]):
                        return "\n".join(lines[:start]).rstrip("\n"), end - start + 1
                    return text, 0
    return text, 0


def markdown(appendices: list[Appendix], root: Path) -> str:
    out = []
    for appendix in appendices:
        number = LETTERS.index(appendix.letter) + 1
        out.append(f"# Приложение {appendix.letter}. {appendix.title} {{.unnumbered #app_{number}}}\n")
        for index, path in enumerate(appendix.files, start=1):
            text = (root / path).read_text(encoding="utf-8").expandtabs(4).rstrip("\n")
            text, test_lines = split_unit_tests(path, text)
            fence = _fence(text)
            out.append(f"## {appendix.letter}.{index} Файл `{path}` {{.unnumbered .notoc}}\n")
            out.append(f"{fence}{_language(path)}\n{text}\n{fence}\n")
            if test_lines:
                out.append(f"Модульные тесты этого файла ({test_lines} строк) опущены; они есть в архиве с кодом.\n")
    return "\n".join(out)
