"""Sequence diagrams from a small text format, drawn with Graphviz.

Graphviz has no sequence diagrams, but `neato -n2` draws nodes exactly where it is told. This module
turns a `.seq` file into such a graph: a box per participant with a dashed lifeline, one horizontal
arrow per message, notes on a lifeline. The format, one statement per line (a line starting with `#` is a comment):

    participant browser "Браузер"
    # a request is a solid arrow, an answer a dashed one, a note sits on one lifeline
    browser -> nginx : POST /login
    nginx --> browser : 303 See Other
    note website : argon2id verify
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FONT = "DejaVu Sans"
LABEL_SIZE = 11.0
BOX_SIZE = 12.0
MIN_COLUMN = 120.0  # points between lifelines at least; more where a label needs it
ROW = 30.0  # points between messages
NOTE_ROW = 34.0
CHAR_WIDTH = 0.52  # average DejaVu Sans glyph width, in font sizes: enough to estimate a label

_PARTICIPANT = re.compile(r'^participant\s+(\w+)\s+"([^"]+)"$')
_MESSAGE = re.compile(r"^(\w+)\s*(-->|->)\s*(\w+)\s*:\s*(.+)$")
_NOTE = re.compile(r"^note\s+(\w+)\s*:\s*(.+)$")


class SeqError(ValueError):
    """A line of a `.seq` file that does not parse; the message names the file and line."""


@dataclass
class Diagram:
    participants: list[tuple[str, str]] = field(default_factory=list)
    steps: list[tuple] = field(default_factory=list)

    def column(self, name: str, where: str) -> int:
        for index, (key, _) in enumerate(self.participants):
            if key == name:
                return index
        raise SeqError(f'{where}: unknown participant {name!r} (declare it with `participant {name} "..."`)')


def parse(text: str, source: str = "<seq>") -> Diagram:
    diagram = Diagram()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line or line.startswith("#"):
            continue
        if m := _PARTICIPANT.match(line):
            diagram.participants.append((m.group(1), m.group(2)))
        elif m := _MESSAGE.match(line):
            src, arrow, dst, label = m.groups()
            diagram.steps.append(
                ("msg", diagram.column(src, where), diagram.column(dst, where), arrow == "-->", label.strip())
            )
        elif m := _NOTE.match(line):
            diagram.steps.append(("note", diagram.column(m.group(1), where), m.group(2).strip()))
        else:
            raise SeqError(f"{where}: cannot read {raw.strip()!r}")
    if not diagram.participants or not diagram.steps:
        raise SeqError(f"{source}: a diagram needs participants and at least one message")
    return diagram


WRAP = 24  # characters per line of a message label
NOTE_WRAP = 30


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrap(label: str, width: int = WRAP) -> list[str]:
    """A label broken at spaces into lines of about `width` characters."""
    lines: list[str] = []
    for word in label.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _text_width(text: str, size: float = LABEL_SIZE) -> float:
    return max(len(line) for line in text.split("\n")) * size * CHAR_WIDTH


def columns(diagram: Diagram) -> list[float]:
    """The x of each lifeline: each gap as narrow as its labels, boxes and notes allow, so that the
    picture keeps a readable scale once it is shrunk to the page width."""
    count = len(diagram.participants)
    gaps = [MIN_COLUMN] * max(count - 1, 0)
    for index, (_, label) in enumerate(diagram.participants[:-1]):
        neighbour = diagram.participants[index + 1][1]
        gaps[index] = max(gaps[index], (_text_width(label, BOX_SIZE) + _text_width(neighbour, BOX_SIZE)) * 0.6 + 40)
    for step in diagram.steps:
        if step[0] == "note":
            _, col, text = step
            half = _text_width("\n".join(wrap(text, NOTE_WRAP)), LABEL_SIZE - 1) / 2 + 16
            if col > 0:
                gaps[col - 1] = max(gaps[col - 1], half + 10)
            if col < count - 1:
                gaps[col] = max(gaps[col], half + 10)
    for step in diagram.steps:
        if step[0] == "msg":
            lo, hi = sorted(step[1:3])
            need = _text_width("\n".join(wrap(step[4]))) + 24
            have = sum(gaps[lo:hi])
            if hi > lo and have < need:
                for gap in range(lo, hi):
                    gaps[gap] += (need - have) / (hi - lo)
    xs = [0.0]
    for gap in gaps:
        xs.append(xs[-1] + gap)
    return xs


def _label_lines(step: tuple, xs: list[float]) -> list[str]:
    """A message label wrapped to the room its arrow gives (at least WRAP characters a line)."""
    room = abs(xs[step[2]] - xs[step[1]]) - 24
    return wrap(step[4], max(WRAP, int(room / (LABEL_SIZE * CHAR_WIDTH))))


def _row(step: tuple, xs: list[float]) -> float:
    if step[0] == "note":
        return NOTE_ROW + (len(wrap(step[2], NOTE_WRAP)) - 1) * LABEL_SIZE * 1.1
    return ROW + (len(_label_lines(step, xs)) - 1) * LABEL_SIZE * 1.2


def to_dot(diagram: Diagram) -> str:
    """The Graphviz source (for `neato -n2`) of the diagram."""
    xs = columns(diagram)
    height = sum(_row(step, xs) for step in diagram.steps) + ROW
    top = height + 20.0
    out = [
        "digraph sequence {",
        f'  graph [splines=line, outputorder=edgesfirst, pad=0.15, fontname="{FONT}"];',
        f'  node [fontname="{FONT}", fontsize={BOX_SIZE:g}];',
        f'  edge [fontname="{FONT}", arrowsize=0.7, penwidth=1.1];',
    ]
    for index, (key, label) in enumerate(diagram.participants):
        x = xs[index]
        out.append(
            f'  p_{key} [label={_quote(label)}, shape=box, style="rounded,filled", '
            f'fillcolor="#E8EEF7", pos="{x:.0f},{top:.0f}!", height=0.42];'
        )
        out.append(f'  end_{key} [shape=point, width=0.01, label="", pos="{x:.0f},0!"];')
        out.append(f"  p_{key} -> end_{key} [style=dashed, arrowhead=none, color=gray50];")
    y = top - 24.0 - ROW * 0.6
    for number, step in enumerate(diagram.steps):
        extra = _row(step, xs) - ROW
        if step[0] == "msg":
            _, src, dst, reply, label = step
            y -= extra
            x1, x2 = xs[src], xs[dst]
            out.append(f'  a{number} [shape=point, width=0.01, label="", pos="{x1:.0f},{y:.0f}!"];')
            out.append(f'  b{number} [shape=point, width=0.01, label="", pos="{x2:.0f},{y:.0f}!"];')
            style = "dashed" if reply else "solid"
            out.append(f"  a{number} -> b{number} [style={style}];")
            lines = _label_lines(step, xs)
            label_y = y + 9 + (len(lines) - 1) * LABEL_SIZE * 0.6
            out.append(
                f"  l{number} [label={_quote(chr(10).join(lines))}, shape=plaintext, fontsize={LABEL_SIZE:g}, "
                f'height=0.18, margin="0.03,0", style=filled, fillcolor=white, '
                f'pos="{(x1 + x2) / 2:.0f},{label_y:.0f}!"];'
            )
            y -= ROW
        else:
            _, col, text = step
            y -= extra / 2
            note = _quote("\n".join(wrap(text, NOTE_WRAP)))
            out.append(
                f'  n{number} [label={note}, shape=note, style=filled, fillcolor="#FFF8DC", '
                f'fontsize={LABEL_SIZE - 1:g}, height=0.3, margin="0.08,0.02", pos="{xs[col]:.0f},{y + 6:.0f}!"];'
            )
            y -= ROW + extra / 2
    out.append("}")
    return "\n".join(out) + "\n"
