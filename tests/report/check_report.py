"""Checks a built lab report (DOCX) and code archive (ZIP) against the repository.

Standard library only. Every check reads the repository itself (routes, settings, schema,
protocol, appendix files), so a report that no longer describes the code fails here.

    python3 tests/report/check_report.py --docx FILE --zip FILE --screenshots DIR --captures DIR \
        [--expect-text TEXT]... [--final]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import struct
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs/tools"))

from reportgen import appendices, captures, live_data, placeholders, screenshots  # noqa: E402
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
SIZE_LIMIT = 2_000_000

# Every case and page of the assignment has its screenshot in the report (docs/screenshots.tsv).
REQUIRED_SCREENSHOTS = {
    "the start page inviting a guest to register or log in": "01-landing.png",
    "the registration page": "02-register-form.png",
    "the user's page right after registering": "03-home-after-register.png",
    "the login page": "41-login-form.png",
    "an empty login form submitted": "40-login-empty-submitted.png",
    "a wrong password": "04-login-wrong-password.png",
    "logging out": "42-after-logout.png",
    "my rooms after creating rooms": "07-my-rooms.png",
    "a room title refused": "43-room-title-too-long.png",
    "my rooms after deleting one": "08-my-rooms-after-delete.png",
    "another user's room cannot be deleted": "26-forbidden-room.png",
    "a search that is too short": "09-search-too-short.png",
    "search results": "10-search-results.png",
    "a search with no results": "44-search-no-results.png",
    "the chat page opened from the search results": "23-chat-from-search.png",
    "the notice that someone joined": "11-chat-joined-notice.png",
    "a message reaching everyone in the room": "13-chat-two-users-bob.png",
    "the deleted-room notice as the guest sees it": "24-chat-room-deleted.png",
    "the English interface": "45-home-english.png",
    "the chat on a phone": "22-phone-chat.png",
}

REQUIRED_SECTIONS = [
    "Введение",
    "Описание архитектуры ПО",
    "Описание структуры базы данных",
    "Описание протокола и форматов передачи данных",
    "Описание API",
    "Скриншоты функционала",
    "Заключение",
    "Приложение А",
    "Приложение Б",
    "Состав архива с кодом",
]

# What each capture of the browser scenarios shows a grader, by the section that quotes it.
CAPTURES = {
    "ticket": ("Описание API", ['"expires_in": 60', '"ws_path": "/ws"', "X-CSRF-Token:"]),
    "ws-handshake": (
        "Описание протокола",
        ["GET /ws HTTP/1.1", "Sec-WebSocket-Protocol: chat.v1, bearer.eyJ", "HTTP/1.1 101", "sec-websocket-protocol: chat.v1"],
    ),
    "nginx-access": ("Описание архитектуры ПО", ['"uri":"/ws"', '"status":101', '"upstream_status":"101"']),
}
# A whole JWT (header, claims and signature): the report shows tickets cut short only.
WHOLE_JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")

failures: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        failures.append(message)


# ---- reading the DOCX -------------------------------------------------------------------------


class Paragraph:
    def __init__(self, style: str, text: str):
        self.style, self.text = style, text


def paragraphs(document_xml: bytes) -> list[Paragraph]:
    body = ElementTree.fromstring(document_xml).find(f"{W}body")
    out = []
    for p in body.iter(f"{W}p"):
        style_el = p.find(f"{W}pPr/{W}pStyle")
        parts = []
        for el in p.iter():
            if el.tag == f"{W}t":
                parts.append(el.text or "")
            elif el.tag == f"{W}br":
                parts.append("\n")
            elif el.tag == f"{W}tab":
                parts.append("\t")
        out.append(Paragraph(style_el.get(f"{W}val") if style_el is not None else "", "".join(parts)))
    return out


def squeeze(text: str) -> str:
    """Text without any whitespace, so that wrapping and indentation do not matter."""
    return re.sub(r"\s+", "", text)


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def section_text(paras: list[Paragraph], title: str) -> str:
    """The text from the Heading1 containing `title` to the next Heading1."""
    out, inside = [], False
    for p in paras:
        if p.style == "Heading1":
            inside = title in p.text
        if inside:
            out.append(p.text)
    return "\n".join(out)


# ---- reading the repository -------------------------------------------------------------------


def listed_screenshots() -> list[tuple[str, str]]:
    """The screenshots the report shows (docs/screenshots.tsv without the rows it leaves out)."""
    with (ROOT / "docs/screenshots.tsv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[1], r[2]) for r in rows[1:] if r[0].strip() != screenshots.LEFT_OUT]


def appendix_entries() -> list[tuple[str, appendices.Entry]]:
    """(appendix letter, entry) for every key file docs/appendices.txt puts in the appendices."""
    loaded = appendices.load(ROOT / "docs/appendices.txt", ROOT)
    return [(appendix.letter, entry) for appendix in loaded for entry in appendix.entries]


def code_without_unit_tests(path: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    return text.split("\n#[cfg(test)]\nmod tests", 1)[0] if path.endswith(".rs") else text


def route_paths() -> list[str]:
    routes = ROOT / "website/src/routes/mod.rs"
    if not routes.exists():
        print("note: website/src/routes/mod.rs does not exist yet; the route check is skipped")
        return []
    return re.findall(r'\.route\(\s*"([^"]+)"', routes.read_text(encoding="utf-8"))


def setting_names() -> set[str]:
    names = set()
    for config in ("website/src/config.rs", "chat/src/config.rs"):
        path = ROOT / config
        if path.exists():
            code = code_without_unit_tests(config)
            names |= set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"', code))
    return names


def chat_error_codes() -> list[str]:
    path = ROOT / "chat/src/protocol.rs"
    if not path.exists():
        return []
    body = re.search(r"pub enum ErrorCode \{(.*?)\n\}", path.read_text(encoding="utf-8"), re.S)
    if not body:
        return []
    variants = re.findall(r"^\s*([A-Z]\w*),", body.group(1), re.M)
    return [re.sub(r"(?<!^)([A-Z])", r"_\1", v).lower() for v in variants]


# ---- the checks -------------------------------------------------------------------------------


def check_captures(paras: list[Paragraph], captures_dir: Path) -> None:
    """Each capture the chapters name is quoted whole in its section; real ones show what they are
    for; no ticket is shown whole anywhere."""
    names = captures.named_in(sorted((ROOT / "docs/report").glob("*.md")))
    check(sorted(names) == sorted(CAPTURES), f"the chapters capture {names}, this check knows {sorted(CAPTURES)}")
    for name in names:
        file = captures.path(captures_dir, name)
        if not file.is_file():
            check(False, f"the capture {file} is missing")
            continue
        quoted = file.read_text(encoding="utf-8")
        title, wanted = CAPTURES.get(name, ("", []))
        section = squeeze(section_text(paras, title))
        check(squeeze(quoted) in section, f"the section {title!r} does not quote the capture {file.name}")
        if not quoted.startswith(placeholders.CAPTURE_MARK):
            for text in wanted:
                check(squeeze(text) in section, f"the capture {file.name} in {title!r} does not show {text!r}")
    text = "\n".join(p.text for p in paras)
    check(not WHOLE_JWT.search(text), f"the report shows a whole ticket: {WHOLE_JWT.search(text)}")


def check_docx(
    docx: Path, zip_path: Path, shots_dir: Path, captures_dir: Path, expected: list[str], final: bool = False
) -> None:
    size = docx.stat().st_size
    check(size <= SIZE_LIMIT, f"{docx.name} is {size:,} bytes, over {SIZE_LIMIT:,}")
    with zipfile.ZipFile(docx) as z:
        document_xml = z.read("word/document.xml")
        rels = ElementTree.fromstring(z.read("word/_rels/document.xml.rels"))
        media = {
            rel.get("Id"): z.read("word/" + rel.get("Target")) for rel in rels if rel.get("Type", "").endswith("/image")
        }
    paras = paragraphs(document_xml)
    text = "\n".join(p.text for p in paras)
    flat = squeeze(text)

    headings = [p.text for p in paras if p.style == "Heading1"]
    for section in REQUIRED_SECTIONS:
        check(any(section in h for h in headings), f"no top-level section {section!r} (headings: {headings})")
    for value in expected:
        check(value in text, f"the report does not contain {value!r}")
    if final:
        for name, value in placeholders.TITLE_PAGE.items():
            check(value not in text, f"a --final report still holds the placeholder of {name}: {value!r}")
        check(placeholders.CAPTURE_MARK not in text, "a --final report quotes a placeholder capture")

    # Every listed screenshot is embedded, with its caption, at its own size; plus every diagram.
    root = ElementTree.fromstring(document_xml)
    embedded = [blip.get(f"{R}embed") for blip in root.iter(f"{A}blip")]
    shots = listed_screenshots()
    diagrams = [p for p in (ROOT / "docs/diagrams").iterdir() if p.suffix in (".dot", ".seq")]
    check(
        len(embedded) == len(shots) + len(diagrams),
        f"{len(embedded)} pictures in the report, expected {len(shots)} screenshots + {len(diagrams)} diagrams",
    )
    captions = [p.text for p in paras if p.style == "ImageCaption"]
    listed = {name for name, _ in shots}
    for case, name in REQUIRED_SCREENSHOTS.items():
        check(name in listed, f"no screenshot of {case} ({name}) in docs/screenshots.tsv")
    for name, caption in shots:
        check(re.search(r"\((?:сценарий|website|chat), пп?\. ", caption) is not None, f"the caption of {name} does not say which requirement it shows")
        check(any(c.endswith(caption) for c in captions), f"no figure captioned {caption!r} ({name})")
    embedded_sizes = Counter(png_size(media[rid]) for rid in embedded if rid in media)
    wanted_sizes = Counter(png_size((shots_dir / name).read_bytes()) for name, _ in shots)
    missing = wanted_sizes - embedded_sizes
    check(not missing, f"screenshots of these sizes are not embedded: {dict(missing)}")
    numbers = [int(m.group(1)) for c in captions if (m := re.match(r"Рисунок (\d+) — ", c))]
    check(numbers == list(range(1, len(captions) + 1)), f"figures are not numbered 1..n in order: {numbers}")

    # The appendices hold the current code of every listed file (or of each item listed of it),
    # under a heading that names the file, with its one-line caption; and the archive's file list.
    entries = appendix_entries()
    check(bool(entries), "docs/appendices.txt lists no files")
    captions = [p.text for p in paras if p.style == "ListingCaption"]
    for letter, entry in entries:
        if entry.items:
            for piece in appendices.fragments(ROOT, entry):
                check(squeeze(piece) in flat, f"the appendices do not hold the current text of an item of {entry.path}")
                check(squeeze(piece) in squeeze(code_without_unit_tests(entry.path)), f"an excerpt of {entry.path} is not in the file")
        else:
            check(squeeze(code_without_unit_tests(entry.path)) in flat, f"the appendices do not hold the current {entry.path}")
        check(any(entry.path in p.text and p.style == "Heading2" for p in paras), f"no appendix heading names {entry.path}")
        check(
            any(squeeze(entry.caption[1:]) in squeeze(c) for c in captions),
            f"the listing of {entry.path} has no caption saying what it is",
        )
    archive_list = section_text(paras, "Состав архива")
    with zipfile.ZipFile(zip_path) as z:
        archived = [n.split("/", 1)[1] for n in z.namelist() if not n.endswith("/")]
    for name in archived:
        folder, _, base = name.rpartition("/")
        check(base in archive_list, f"the archive's file list does not show {name}")
    check(len(archived) > 0, "the archive is empty")

    # The API section names every route of the website's route table, and the chat endpoint.
    api = section_text(paras, "Описание API")
    for path in route_paths() + ["/ws"]:
        check(path in api, f"the API section does not describe the route {path}")

    # Every setting both services read, every chat error code, every event type.
    for name in sorted(setting_names()):
        check(name in text, f"the setting {name} is not described")
    for code in chat_error_codes():
        check(code in text, f"the chat error code {code} is not described")
    for event in ("welcome", "joined", "message", "left", "error"):
        check(f'"type": "{event}"' in text or f'"type":"{event}"' in text, f"no example of the {event} event")

    # The database chapter shows every collection, field and index of db/schema.json.
    schema = json.loads((ROOT / "db/schema.json").read_text(encoding="utf-8"))
    db = section_text(paras, "Описание структуры базы данных")
    for name, collection in schema["collections"].items():
        check(name in db, f"the database chapter does not name the collection {name}")
        for field in collection["validator"]["$jsonSchema"]["properties"]:
            check(field in db, f"the database chapter does not describe {name}.{field}")
        for index in collection.get("indexes", []):
            check(index["name"] in db, f"the database chapter does not describe the index {index['name']}")
    check("readWrite" in db, "the database chapter does not give the app user's role")

    # ... and the collections as the website stored them for the build's scenario (scripts/data).
    check("=== webchat.users (" in db and "=== webchat.rooms (" in db, "the database chapter lists no stored collections")
    for person in live_data.PEOPLE:
        check(f'"email": "{person.email}"' in db, f"the stored users do not include {person.email}")
        check(person.password not in text, "a scenario's password is in the report")
        for title in person.rooms:
            check(f'"title": "{title}"' in db, f"the stored rooms do not include {title!r}")
    check(db.count('"password_hash": "$argon2id$') == len(live_data.PEOPLE), "the stored password hashes are not shown")

    # The table of contents points at bookmarks that exist.
    bookmarks = {b.get(f"{W}name") for b in root.iter(f"{W}bookmarkStart")}
    targets = re.findall(r"PAGEREF (\S+)", document_xml.decode("utf-8"))
    check(bool(targets), "no table of contents")
    for target in targets:
        check(target in bookmarks, f"the table of contents points at a missing bookmark {target}")

    check_captures(paras, captures_dir)


def check_zip(archive: Path, stem: str) -> None:
    size = archive.stat().st_size
    check(size <= SIZE_LIMIT, f"{archive.name} is {size:,} bytes, over {SIZE_LIMIT:,}")
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        # git archive records the commit it archived as the ZIP comment. Others may commit while
        # the report builds, so the archive is compared with that commit, which must be HEAD or
        # one of its ancestors.
        commit = z.comment.decode("ascii", errors="replace")
    git = ["git", "-C", str(ROOT)]
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        check(False, f"the archive does not name the commit it holds ({commit!r}): not made by git archive")
        return
    on_main_line = subprocess.run([*git, "merge-base", "--is-ancestor", commit, "HEAD"]).returncode == 0
    check(on_main_line, f"the archive's commit {commit} is not HEAD or an ancestor of it")
    check(all(n.startswith(stem + "/") for n in names), f"archive entries are not all under {stem}/")
    inside = sorted(n[len(stem) + 1 :] for n in names)
    committed = sorted(
        subprocess.run(
            [*git, "ls-tree", "-r", "--name-only", commit], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    check(
        inside == committed,
        "the archive is not exactly the committed tree: "
        f"extra {sorted(set(inside) - set(committed))[:5]}, missing {sorted(set(committed) - set(inside))[:5]}",
    )
    for forbidden in ("target/", "dist/", "node_modules/", ".venv/", "e2e/artifacts/"):
        check(not any(f"/{forbidden}" in f"/{n}" for n in inside), f"the archive contains {forbidden}")
    for required in ("docker-compose.yml", "README.md", ".gitignore", ".dockerignore"):
        if (ROOT / required).exists():
            check(required in inside, f"the archive lacks {required}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docx", type=Path, required=True)
    parser.add_argument("--zip", type=Path, required=True)
    parser.add_argument("--screenshots", type=Path, required=True)
    parser.add_argument("--captures", type=Path, required=True)
    parser.add_argument("--expect-text", action="append", default=[])
    parser.add_argument("--final", action="store_true", help="the report was built with --final: no placeholder is left")
    args = parser.parse_args()
    check(args.docx.stem == args.zip.stem, "the DOCX and the ZIP are not named alike")
    check(args.docx.stem.endswith("_webdev_lab_1"), f"{args.docx.name} is not named <Фамилия>_<Имя>_webdev_lab_1")
    check_docx(args.docx, args.zip, args.screenshots, args.captures, args.expect_text, args.final)
    check_zip(args.zip, args.zip.stem)
    if failures:
        print(f"{len(failures)} report check(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(
        f"report checks passed: {args.docx.name} ({args.docx.stat().st_size:,} bytes), "
        f"{args.zip.name} ({args.zip.stat().st_size:,} bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
