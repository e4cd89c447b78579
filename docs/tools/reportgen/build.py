"""Assembles the report's Markdown from `docs/report/*.md` and the repository, then writes the DOCX
(pandoc, with the generated reference document) and the ZIP of the committed tree (git archive).

Directives, each alone on a line of a chapter file, are replaced by generated text:

    @toc                      the table of contents
    @pagebreak                a page break
    @diagram NAME Caption     docs/diagrams/NAME.dot or NAME.seq, drawn, as a numbered figure
    @db-collections           fields and indexes of every collection, from db/schema.json
    @db-commands              the commands db/init's script sends to create the collections'
                              validators and indexes (the script run under node, recorded)
    @db-user                  the application's database user, from the init script in db/
    @db-listing               the collections as stored after a scenario through the real website
                              (a private stack filled over HTTP, printed by scripts/data)
    @screenshots              every screenshot of docs/screenshots.tsv
    @capture NAME             a text the browser scenarios captured (e2e/artifacts/captures/NAME.txt)
    @appendices               the key code and the archive's file list, as docs/appendices.txt says

`{{REPORT_X}}` anywhere in a chapter is the variable's value (docs/report.env, or the environment).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from . import (
    appendices,
    captures,
    database,
    document,
    images,
    live_data,
    placeholders,
    postprocess,
    reference_docx,
    screenshots,
    variables,
)

# "Не должен превышать 2 мегабайта": kept under the smaller reading, 2 000 000 bytes.
SIZE_LIMIT = 2_000_000
DIAGRAM_MAX_HEIGHT_CM = 22.0
HIGHLIGHT_STYLE = "tango"


class BuildError(RuntimeError):
    """The report cannot be built; the message says what to do."""


def _expand(line: str, ctx: dict) -> str:
    root: Path = ctx["root"]
    name, _, rest = line[1:].partition(" ")
    if name == "toc":
        return line  # filled in after numbering, when the headings are known
    if name == "pagebreak":
        return document.PAGE_BREAK
    if name == "diagram":
        diagram, _, caption = rest.partition(" ")
        sources = [p for p in (root / "docs/diagrams" / f"{diagram}{ext}" for ext in (".dot", ".seq")) if p.exists()]
        if not sources or not caption.strip():
            raise BuildError(f"@diagram {diagram}: needs docs/diagrams/{diagram}.dot or .seq and a caption")
        picture = images.render_diagram(sources[0], ctx["build"])
        width = images.display_width_cm(
            picture, images.DIAGRAM_DPI, reference_docx.TEXT_WIDTH_CM, DIAGRAM_MAX_HEIGHT_CM
        )
        return f"![{caption.strip()}]({picture.as_posix()}){{#fig:{diagram} width={width}cm}}"
    if name == "db-collections":
        return database.collections_markdown(
            root / "db/schema.json", database.load_descriptions(root / "docs/db-fields.tsv")
        )
    if name == "db-commands":
        return database.init_commands_markdown(root)
    if name == "db-user":
        return database.app_user_markdown(root)
    if name == "db-listing":
        return live_data.markdown(ctx["db_listing"]())
    if name == "screenshots":
        shots = screenshots.load(root / "docs/screenshots.tsv")
        screenshots.check_present(shots, ctx["screenshots"])
        return screenshots.markdown(shots, ctx["screenshots"], ctx["build"] / "screenshots", ctx["level"])
    if name == "capture":
        return captures.markdown(rest.strip(), ctx["captures"])
    if name == "appendices":
        return appendices.markdown(appendices.load(root / "docs/appendices.txt", root), root, ctx.get("archive"))
    raise BuildError(f"unknown directive {line.strip()!r}")


def assemble(
    root: Path,
    values: dict[str, str],
    build: Path,
    screenshot_dir: Path,
    level: int = 0,
    *,
    db_listing: Callable[[], str],
    capture_dir: Path,
    archive: Path | None = None,
) -> str:
    """The whole report as one Markdown text, numbered, with the table of contents in place;
    `level` is how hard the screenshots are compressed (see images.COMPRESSION_LEVELS);
    `db_listing()` gives the text of `@db-listing` (live_data.listing); `capture_dir` holds the
    texts of `@capture NAME`; `archive` is the code archive that `@archive` lists."""
    ctx = {
        "root": root,
        "build": build,
        "screenshots": screenshot_dir,
        "captures": capture_dir,
        "level": level,
        "db_listing": db_listing,
        "archive": archive,
    }
    chapters = sorted((root / "docs/report").glob("*.md"))
    if not chapters:
        raise BuildError("docs/report/ has no chapters (*.md)")
    parts = []
    for chapter in chapters:
        text = variables.substitute(chapter.read_text(encoding="utf-8"), values, str(chapter.relative_to(root)))
        lines = [_expand(line.strip(), ctx) if line.startswith("@") else line for line in text.split("\n")]
        parts.append("\n".join(lines))
    numbered, headings = document.number("\n\n".join(parts))
    return numbered.replace("\n@toc\n", "\n" + document.toc_openxml(headings) + "\n")


def _pandoc(markdown_file: Path, reference: Path, out: Path) -> None:
    command = [
        "pandoc",
        str(markdown_file),
        "--from=markdown-auto_identifiers",
        "--to=docx",
        f"--output={out}",
        f"--reference-doc={reference}",
        f"--highlight-style={HIGHLIGHT_STYLE}",
        "--metadata=lang:ru-RU",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"pandoc failed:\n{result.stderr.strip()}")
    for line in result.stderr.splitlines():
        print(f"pandoc: {line}", file=sys.stderr)


def _archive(root: Path, stem: str, out: Path) -> None:
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if dirty:
        changed = dirty.splitlines()
        more = f"\n  ... and {len(changed) - 10} more" if len(changed) > 10 else ""
        print(
            f"warning: the ZIP holds the last commit (HEAD); {len(changed)} changed file(s) are not in it:\n  "
            + "\n  ".join(changed[:10])
            + more,
            file=sys.stderr,
        )
    subprocess.run(
        ["git", "-C", str(root), "archive", "--format=zip", f"--prefix={stem}/", f"--output={out}", "HEAD"], check=True
    )


def _check_size(path: Path) -> int:
    size = path.stat().st_size
    if size > SIZE_LIMIT:
        raise BuildError(f"{path.name} is {size:,} bytes, over the assignment's limit of {SIZE_LIMIT:,} bytes")
    return size


def _refusal(variable_names: list[str], pictures: list[str]) -> str:
    needs = []
    if variable_names:
        needs.append(f"set {', '.join(variable_names)} (docs/report.env or the environment)")
    if pictures:
        needs.append("take the real screenshots (e2e/run)")
    return "--final refuses to build with placeholders: " + " and ".join(needs)


def main(argv: list[str] | None = None) -> int:
    root_default = Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(prog="scripts/report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=root_default, help="the repository (default: this checkout)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: $REPORT_OUT_DIR or dist/)")
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=None,
        help="folder of the screenshots (default: $REPORT_SCREENSHOTS or e2e/artifacts/screenshots)",
    )
    parser.add_argument(
        "--captures",
        type=Path,
        default=None,
        help="folder of the browser scenarios' captured texts (default: $REPORT_CAPTURES or e2e/artifacts/captures)",
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="refuse to build while a placeholder (title-page variable or screenshot) is in use",
    )
    args = parser.parse_args(argv)

    root = args.root.resolve()
    out = (args.out or Path(os.environ.get("REPORT_OUT_DIR") or root / "dist")).resolve()
    shots = (
        args.screenshots or Path(os.environ.get("REPORT_SCREENSHOTS") or root / "e2e/artifacts/screenshots")
    ).resolve()
    captured = (args.captures or Path(os.environ.get("REPORT_CAPTURES") or root / "e2e/artifacts/captures")).resolve()
    build = out / ".build"
    build.mkdir(parents=True, exist_ok=True)
    try:
        values = variables.load(root / "docs/report.env", os.environ)
        listed_shots = screenshots.load(root / "docs/screenshots.tsv")
        screenshots.check_present(listed_shots, shots)  # before anything slow is started
        named_captures = captures.named_in(sorted((root / "docs/report").glob("*.md")))
        captures.check_present(named_captures, captured)
        listed = [shot.file for shot in listed_shots]
        placeholder_variables = placeholders.variables_in_use(values)
        placeholder_pictures = placeholders.pictures_in_use(listed, shots) + placeholders.captures_in_use(
            [captures.path(captured, name) for name in named_captures]
        )
        box = ""
        if placeholder_variables or placeholder_pictures:
            box = placeholders.report(
                values,
                placeholder_variables,
                placeholder_pictures,
                len(listed) + len(named_captures),
                final=args.final,
            )
            print(box, file=sys.stderr)
            if args.final:
                raise BuildError(_refusal(placeholder_variables, placeholder_pictures))
        stem = variables.output_stem(values)
        reference = reference_docx.build(build / "reference.docx")
        docx, archive = out / f"{stem}.docx", out / f"{stem}.zip"
        source = build / "report.md"
        appendices.load(root / "docs/appendices.txt", root)  # before anything slow is started
        # The archive first: an appendix lists its files.
        _archive(root, stem, archive)
        # Once per build, however many compression levels are tried.
        db_listing = functools.cache(lambda: live_data.listing(root, build))
        for level in range(len(images.COMPRESSION_LEVELS)):
            markdown = assemble(
                root, values, build, shots, level, db_listing=db_listing, capture_dir=captured, archive=archive
            )
            source.write_text(markdown, encoding="utf-8")
            _pandoc(source, reference, docx)
            postprocess.apply(
                docx,
                title=f"{values['REPORT_LAB']}: {values['REPORT_TOPIC']}",
                author=f"{values['REPORT_SURNAME']} {values['REPORT_NAME']}",
            )
            if docx.stat().st_size <= SIZE_LIMIT:
                break
            if level + 1 < len(images.COMPRESSION_LEVELS):
                print(
                    f"note: {docx.name} is {docx.stat().st_size:,} bytes, over {SIZE_LIMIT:,}; "
                    "compressing the screenshots harder",
                    file=sys.stderr,
                )
        for path in (docx, archive):
            print(f"{path}  {_check_size(path):,} bytes")
        if box:
            print(box, file=sys.stderr)  # again, after the build's own messages
    except (
        BuildError,
        screenshots.MissingScreenshots,
        captures.MissingCaptures,
        appendices.AppendixError,
        variables.VariablesError,
        document.NumberingError,
        images.ImageError,
        live_data.LiveDataError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
