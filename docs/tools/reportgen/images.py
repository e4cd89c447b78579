"""Pictures of the report: diagrams drawn with Graphviz and screenshots made smaller with pngquant."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

from . import seqdiag

DIAGRAM_DPI = 150
CM_PER_INCH = 2.54
# Screenshots were taken at one CSS pixel per device pixel; 96 px make an inch on screen.
SCREEN_DPI = 96


class ImageError(RuntimeError):
    """A picture could not be produced; the message says which and why."""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels, read from the PNG header."""
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ImageError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def display_width_cm(path: Path, dpi: int, max_width_cm: float, max_height_cm: float) -> float:
    """The width to print a picture at: its natural size, shrunk to fit the given box."""
    width, height = png_size(path)
    natural = width / dpi * CM_PER_INCH
    return round(min(natural, max_width_cm, max_height_cm * width / height), 2)


def render_diagram(source: Path, out_dir: Path) -> Path:
    """Draws `name.dot` (with dot) or `name.seq` (a sequence diagram, with neato -n2) to PNG."""
    out = out_dir / (source.stem + ".png")
    if source.suffix == ".seq":
        dot_source = seqdiag.to_dot(seqdiag.parse(source.read_text(encoding="utf-8"), str(source)))
        command = ["neato", "-n2"]
    elif source.suffix == ".dot":
        dot_source = source.read_text(encoding="utf-8")
        command = ["dot"]
    else:
        raise ImageError(f"{source}: a diagram is a .dot or a .seq file")
    result = subprocess.run(
        command + ["-Tpng", f"-Gdpi={DIAGRAM_DPI}", "-o", str(out)], input=dot_source, text=True, capture_output=True
    )
    if result.returncode != 0:
        raise ImageError(f"Graphviz could not draw {source}:\n{result.stderr.strip()}")
    return out


# pngquant settings from gentle to harsh; the build moves down the list while the report is over
# the size limit. The first keeps screenshots indistinguishable from the originals at print size.
COMPRESSION_LEVELS = (["--quality=55-90"], ["64"], ["16"])


def compress_screenshot(source: Path, out: Path, level: int = 0) -> Path:
    """A palette PNG of the screenshot (pngquant); the original when that would not be smaller."""
    out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            "pngquant",
            "--force",
            "--skip-if-larger",
            "--strip",
            "--speed=3",
            *COMPRESSION_LEVELS[level],
            "--output",
            str(out),
            "--",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    # 98: the result would be larger, 99: the quality would be too low; keep the original then.
    if result.returncode in (98, 99):
        shutil.copyfile(source, out)
    elif result.returncode != 0:
        raise ImageError(f"pngquant failed on {source}: {result.stderr.strip()}")
    return out
