"""Every shell script in the repository passes shellcheck, found by its shebang, not by a list."""

import subprocess

import pytest

from conftest import ROOT


def tracked_shell_scripts() -> list[str]:
    """Files git tracks whose first line starts a shell, plus every `*.sh`."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    scripts = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file():
            continue
        with path.open("rb") as f:
            first = f.readline(200)
        if name.endswith(".sh") or (first.startswith(b"#!") and first.rstrip().split(b"/")[-1].split()[-1] in {b"bash", b"sh"}):
            scripts.append(name)
    return sorted(scripts)


def test_the_known_entry_points_are_found():
    scripts = tracked_shell_scripts()
    for entry in [".ci/run", "scripts/test", "scripts/stack", "e2e/run", "tests/system/run"]:
        assert entry in scripts


@pytest.mark.parametrize("script", tracked_shell_scripts())
def test_shell_script_passes_shellcheck(script):
    result = subprocess.run(["shellcheck", "-x", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
