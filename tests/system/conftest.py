"""What every system test and static check shares: where the repository is, and the chat's limits as its code sets them."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def chat_limit_defaults() -> dict[str, int]:
    """Each CHAT_* limit of the chat service with its default, read from its code
    (`Limits::default()` and `Config::from_lookup` in chat/src/config.rs)."""
    config = (ROOT / "chat" / "src" / "config.rs").read_text()
    defaults_block = re.search(r"impl Default for Limits \{.*?\n\}\n", config, re.S).group(0)
    defaults = {}
    for field, expression in re.findall(r"^\s+(\w+): (.+),$", defaults_block, re.M):
        number = re.search(r"Duration::from_(?:secs|millis)\((.+)\)", expression)
        defaults[field] = eval((number.group(1) if number else expression).replace("_", ""))  # noqa: S307
    names = re.findall(r"(\w+): (?:\w+::\w+\(\s*)?env\s*\.\s*\w+\(\s*\"(CHAT_\w+)\",\s*(?:\w+\()?defaults\.(\w+)", config, re.S)
    assert names, "no limits found in chat/src/config.rs"
    return {name: defaults[field] for field, name, _ in names}
