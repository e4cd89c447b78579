"""The chat's limits and close codes have one source, the code; chat/README.md is their reference
and the report repeats them in Russian. These checks keep both tables equal to the code."""

import re

from conftest import ROOT, chat_limit_defaults

CLOSE_REASONS = (ROOT / "chat" / "src" / "close_reason.rs").read_text()
README = (ROOT / "chat" / "README.md").read_text()
REPORT = (ROOT / "docs" / "report" / "04-protocol.md").read_text()

# tungstenite's names for the standard close codes the server sends.
CLOSE_CODES = {"Normal": 1000, "Away": 1001, "Protocol": 1002, "Invalid": 1007, "Policy": 1008, "Size": 1009}


def table_rows(markdown: str, first_cell: str) -> dict[str, str]:
    """The rows of a markdown table whose first cell matches `first_cell`: first cell -> second."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(first_cell, cells[0]):
            rows[cells[0].strip("`")] = cells[1].strip("`").replace(" ", "")
    return rows


def close_codes_in_code() -> set[int]:
    codes = {CLOSE_CODES[name] for name in re.findall(r"CloseCode::(\w+)\b", CLOSE_REASONS) if name in CLOSE_CODES}
    codes |= {int(n) for n in re.findall(r"CloseCode::Library\((\d+)\)", CLOSE_REASONS)}
    # A client's own close is answered with its own frame (the tables' "echo" row), not a code.
    return codes


def test_the_readme_lists_every_limit_with_the_codes_default():
    in_readme = table_rows(README, r"`CHAT_[A-Z_]+`")
    expected = {name: str(value) for name, value in chat_limit_defaults().items()}
    assert {k: v for k, v in in_readme.items() if k in expected} == expected
    assert set(expected) <= set(in_readme)


def test_the_report_lists_the_same_limits_and_defaults():
    in_report = table_rows(REPORT, r"`CHAT_[A-Z_]+`")
    expected = {name: str(value) for name, value in chat_limit_defaults().items()}
    assert in_report == expected


def test_both_close_code_tables_list_exactly_the_codes_the_server_sends():
    codes = close_codes_in_code()
    assert {1001, 1008, 1009, 4008} <= codes
    for name, text in [("chat/README.md", README), ("the report", REPORT)]:
        listed = {int(code) for code in table_rows(text, r"(1\d{3}|4\d{3})")}
        assert listed == codes, name
