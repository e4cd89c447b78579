"""The appendices: the key code of each backend, read from the repository when the report is built,
and the list of every file of the code archive.

`docs/appendices.txt` says what goes in:

    == Title                       opens an appendix (lettered А, Б, В, ... as GOST 7.32 asks:
                                   without Ё, З, Й, О, Ч, Ъ, Ы, Ь)
    path — caption                 a file, with one line saying what it is; the whole file
                                   (`path | other` — the first of them that exists)
        @ start of a line          ... or only these items of it: each `@` line names the first
        @ ...                      line of an item (a function, a type, an impl block) by how it
                                   begins; the item runs with its doc comments and attributes to
                                   its closing brace. `@ //!` is the module's own doc comment.
    @archive                       every file of the ZIP archive, one line each
    dir/ — text                    (after @archive) what a folder of the archive holds

A file or item that is not there stops the build, so a renamed file cannot silently drop out.
A Rust file's unit tests (a trailing `#[cfg(test)] mod tests { ... }`) are left out of a whole-file
listing with a note: they are in the ZIP archive, and the report keeps to the code that runs.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

LETTERS = "АБВГДЕЖИКЛМНПРСТУФХЦШЩЭЮЯ"
CAPTION_SEPARATOR = " — "

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
    """`docs/appendices.txt` names something that is not in the repository, or is malformed."""


@dataclass
class Entry:
    path: str
    caption: str
    items: list[str] = field(default_factory=list)


@dataclass
class Appendix:
    letter: str
    title: str
    entries: list[Entry] = field(default_factory=list)
    archive: bool = False
    folders: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return [entry.path for entry in self.entries]


def _language(path: str) -> str:
    name = Path(path).name
    if name == "Dockerfile" or name.endswith(".Dockerfile"):
        return "dockerfile"
    if Path(path).suffix == "":
        return "bash"
    return LANGUAGES.get(Path(path).suffix, "")


def _split_caption(line: str, where: str) -> tuple[str, str]:
    path, sep, caption = line.partition(CAPTION_SEPARATOR)
    if not sep or not path.strip() or not caption.strip():
        raise AppendixError(f"{where}: {line!r} needs the form `path — one line saying what it is`")
    return path.strip(), caption.strip()


def load(list_file: Path, root: Path) -> list[Appendix]:
    appendices: list[Appendix] = []
    seen: set[str] = set()
    for number, raw in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        where = f"{list_file}:{number}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("=="):
            if len(appendices) == len(LETTERS):
                raise AppendixError(f"{where}: too many appendices")
            appendices.append(Appendix(LETTERS[len(appendices)], line[2:].strip()))
            continue
        if not appendices:
            raise AppendixError(f"{where}: a line before the first `== Title` line")
        current = appendices[-1]
        if line == "@archive":
            current.archive = True
        elif line.startswith("@"):
            if not current.entries:
                raise AppendixError(f"{where}: an `@ item` line before any file")
            selector = line[1:].strip()
            if not selector:
                raise AppendixError(f"{where}: an empty `@` line")
            current.entries[-1].items.append(selector)
        elif current.archive:
            folder, text = _split_caption(line, where)
            current.folders[folder.rstrip("/") + "/"] = text
        else:
            paths, caption = _split_caption(line, where)
            # `a | b`: the first that exists, for a module on its way from a file to a folder.
            choices = [p.strip() for p in paths.split("|")]
            if any(ch in p for p in choices for ch in "*?["):
                raise AppendixError(f"{where}: name each key file ({paths!r} is a pattern)")
            path = next((p for p in choices if (root / p).is_file()), None)
            if path is None:
                raise AppendixError(f"{where}: {paths!r} is not a file in the repository")
            if path in seen:
                raise AppendixError(f"{where}: {path} is listed twice")
            seen.add(path)
            current.entries.append(Entry(path, caption))
    for appendix in appendices:
        for entry in appendix.entries:
            excerpt(root, entry)  # every item must be found now, before anything slow runs
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


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|//.*$')


def _braces(line: str) -> int:
    """Opening minus closing braces of a line of code, outside strings, chars and comments."""
    code = _STRING.sub("", line)
    return code.count("{") - code.count("}")


def item_span(lines: list[str], selector: str, path: str = "") -> tuple[int, int]:
    """The first and last line (0-based, inclusive) of the item whose first line begins with
    `selector` (leading spaces aside), its doc comments and attributes included."""
    if selector == "//!":
        end = 0
        while end < len(lines) and lines[end].startswith("//!"):
            end += 1
        if end == 0:
            raise AppendixError(f"{path}: no module doc comment (`//!`) at the top")
        return 0, end - 1
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(selector)), None)
    if start is None:
        raise AppendixError(f"{path}: no line begins with {selector!r} (docs/appendices.txt names it)")
    first = start
    while first > 0 and lines[first - 1].lstrip().startswith(("///", "#[", "// ")) and lines[first - 1].strip():
        first -= 1
    depth, opened = 0, False
    for end in range(start, len(lines)):
        depth += _braces(lines[end])
        opened = opened or "{" in _STRING.sub("", lines[end])
        if opened and depth <= 0:
            return first, end
        if not opened and _STRING.sub("", lines[end]).rstrip().endswith(";"):
            return first, end
    raise AppendixError(f"{path}: the item {selector!r} does not end")


@dataclass
class Listing:
    text: str
    test_lines: int  # unit-test lines left out of a whole file
    shown: int  # lines shown, for an excerpt
    total: int  # lines of the file without its unit tests


def excerpt(root: Path, entry: Entry) -> Listing:
    """What the appendix shows of a file: all of it (without unit tests), or its chosen items in
    file order, with `…` where lines are skipped."""
    text = (root / entry.path).read_text(encoding="utf-8").expandtabs(4).rstrip("\n")
    code, test_lines = split_unit_tests(entry.path, text)
    lines = code.split("\n")
    if not entry.items:
        return Listing(code, test_lines, len(lines), len(lines))
    spans = sorted(item_span(lines, selector, entry.path) for selector in entry.items)
    out: list[str] = []
    last = -1
    comment = "#" if Path(entry.path).suffix in (".sh", ".py", ".toml", ".yml", ".yaml") else "//"
    for first, end in spans:
        if first <= last:
            first = last + 1
            if first > end:
                continue
        if first > last + 1:
            out.append(f"{comment} …")
        out.extend(lines[first : end + 1])
        last = end
    if last < len(lines) - 1:
        out.append(f"{comment} …")
    shown = sum(1 for line in out if line != f"{comment} …")
    return Listing("\n".join(out), 0, shown, len(lines))


def fragments(root: Path, entry: Entry) -> list[str]:
    """The pieces of an excerpt's text between the `…` lines: each appears verbatim in the file."""
    listing = excerpt(root, entry)
    return [piece.strip("\n") for piece in re.split(r"^(?://|#) …$", listing.text, flags=re.M) if piece.strip()]


def _lines_word(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return "строка"
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return "строки"
    return "строк"


def _archive_listing(appendix: Appendix, archive: Path, in_report: dict[str, str]) -> str:
    """Every file of the ZIP, one line each, grouped by folder: name, lines, and where the report
    shows it."""
    with zipfile.ZipFile(archive) as z:
        names = [info for info in z.infolist() if not info.is_dir()]
        prefix = names[0].filename.split("/", 1)[0] + "/" if names else ""
        rows: dict[str, list[tuple[str, str, str]]] = {}
        for info in names:
            path = info.filename[len(prefix) :]
            data = z.read(info)
            if b"\0" in data:
                size = f"{len(data)} Б"
            else:
                size = str(data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1))
            folder, _, name = path.rpartition("/")
            rows.setdefault(folder + "/" if folder else "./", []).append((name, size, in_report.get(path, "")))
    width = max(len(name) for files in rows.values() for name, _, _ in files) + 2
    out = []
    for folder in sorted(rows, key=lambda f: (f != "./", f)):
        note = appendix.folders.get(folder, "")
        out.append(f"{folder}  {note}".rstrip())
        for name, size, where in sorted(rows[folder]):
            out.append(f"  {name.ljust(width)}{size.rjust(6)}  {where}".rstrip())
    return "\n".join(out)


def markdown(appendices: list[Appendix], root: Path, archive: Path | None = None) -> str:
    out = []
    in_report = {
        entry.path: f"прил. {appendix.letter}.{index}"
        for appendix in appendices
        for index, entry in enumerate(appendix.entries, start=1)
    }
    for appendix in appendices:
        number = LETTERS.index(appendix.letter) + 1
        out.append(f"# Приложение {appendix.letter}. {appendix.title} {{.unnumbered #app_{number}}}\n")
        for index, entry in enumerate(appendix.entries, start=1):
            listing = excerpt(root, entry)
            fence = _fence(listing.text)
            out.append(f"## {appendix.letter}.{index} `{entry.path}` {{.unnumbered .notoc}}\n")
            note = ""
            if entry.items:
                note = (
                    f" Фрагменты файла: {listing.shown} из {listing.total} {_lines_word(listing.total)}; "
                    "пропуски отмечены «…», файл целиком — в архиве."
                )
            elif listing.test_lines:
                note = f" Модульные тесты файла ({listing.test_lines} {_lines_word(listing.test_lines)}) — в архиве."
            caption = entry.caption[:1].upper() + entry.caption[1:]
            out.append(f"::: {{custom-style=\"Listing Caption\"}}\n{caption}.{note}\n:::\n")
            out.append(f"{fence}{_language(entry.path)}\n{listing.text}\n{fence}\n")
        if appendix.archive:
            if archive is None:
                raise AppendixError("@archive needs the code archive, which is built first")
            out.append(
                "Архив с кодом — это все файлы репозитория в последней фиксации (`git archive HEAD`). "
                "Ниже каждый файл архива одной строкой: имя, число строк (для двоичных файлов — размер) "
                "и приложение, где приведён его код.\n"
            )
            listing = _archive_listing(appendix, archive, in_report)
            out.append(f"```{{.text .filelist}}\n{listing}\n```\n")
    return "\n".join(out)
