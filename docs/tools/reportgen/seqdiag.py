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
COLUMN = 190.0  # points between lifelines
ROW = 30.0  # points between messages
NOTE_ROW = 34.0

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
        raise SeqError(f"{where}: unknown participant {name!r} (declare it with `participant {name} \"...\"`)")


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
            diagram.steps.append(("msg", diagram.column(src, where), diagram.column(dst, where),
                                  arrow == "-->", label.strip()))
        elif m := _NOTE.match(line):
            diagram.steps.append(("note", diagram.column(m.group(1), where), m.group(2).strip()))
        else:
            raise SeqError(f"{where}: cannot read {raw.strip()!r}")
    if not diagram.participants or not diagram.steps:
        raise SeqError(f"{source}: a diagram needs participants and at least one message")
    return diagram


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(diagram: Diagram) -> str:
    """The Graphviz source (for `neato -n2`) of the diagram."""
    height = sum(NOTE_ROW if step[0] == "note" else ROW for step in diagram.steps) + ROW
    top = height + 20.0
    out = [
        "digraph sequence {",
        f'  graph [splines=line, outputorder=edgesfirst, pad=0.15, fontname="{FONT}"];',
        f'  node [fontname="{FONT}", fontsize=11];',
        f'  edge [fontname="{FONT}", arrowsize=0.7, penwidth=1.1];',
    ]
    for index, (key, label) in enumerate(diagram.participants):
        x = index * COLUMN
        out.append(f'  p_{key} [label={_quote(label)}, shape=box, style="rounded,filled", '
                   f'fillcolor="#E8EEF7", pos="{x:.0f},{top:.0f}!", width=1.6, height=0.42];')
        out.append(f'  end_{key} [shape=point, width=0.01, label="", pos="{x:.0f},0!"];')
        out.append(f"  p_{key} -> end_{key} [style=dashed, arrowhead=none, color=gray50];")
    y = top - 24.0 - ROW * 0.6
    for number, step in enumerate(diagram.steps):
        if step[0] == "msg":
            _, src, dst, reply, label = step
            xs, xd = src * COLUMN, dst * COLUMN
            out.append(f'  a{number} [shape=point, width=0.01, label="", pos="{xs:.0f},{y:.0f}!"];')
            out.append(f'  b{number} [shape=point, width=0.01, label="", pos="{xd:.0f},{y:.0f}!"];')
            style = "dashed" if reply else "solid"
            out.append(f"  a{number} -> b{number} [style={style}];")
            out.append(f'  l{number} [label={_quote(label)}, shape=plaintext, fontsize=10, height=0.18, '
                       f'margin="0.03,0", style=filled, fillcolor=white, pos="{(xs + xd) / 2:.0f},{y + 9:.0f}!"];')
            y -= ROW
        else:
            _, col, text = step
            y -= (NOTE_ROW - ROW) / 2
            out.append(f'  n{number} [label={_quote(text)}, shape=note, style=filled, fillcolor="#FFF8DC", '
                       f'fontsize=10, height=0.3, margin="0.08,0.02", pos="{col * COLUMN:.0f},{y + 6:.0f}!"];')
            y -= NOTE_ROW - (NOTE_ROW - ROW) / 2
    out.append("}")
    return "\n".join(out) + "\n"
