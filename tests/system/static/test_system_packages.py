"""scripts/lib/common.sh `ensure_debian_packages`: what `scripts/stack up`, `scripts/test` and the
other entry points do when a Debian package they need is missing.

They run against stand-ins for `dpkg-query`, `id`, `sudo` and `apt-get` placed first on PATH, so
nothing is installed and the answer does not depend on who runs the test: each stand-in writes
down how it was called.
"""

import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

STUBS = {
    # Installed: the packages named in $INSTALLED.
    "dpkg-query": 'for p in $INSTALLED; do [ "$p" = "${!#}" ] && { printf "install ok installed"; exit 0; }; done; exit 1',
    "id": 'if [ "$1" = -u ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi',
    # Passwordless sudo when $FAKE_SUDO is 1; it runs the command itself, marked in the record.
    "sudo": '[ "$FAKE_SUDO" = 1 ] || exit 1; [ "$1" = -n ] && shift; echo "sudo $*" >>"$RECORD"; FAKE_UID=0 exec "$@"',
    # Updates always work; installs end with $FAKE_APT_STATUS.
    "apt-get": 'echo "apt-get $*" >>"$RECORD"; case " $* " in *" update "*) exit 0 ;; esac; exit "${FAKE_APT_STATUS:-0}"',
}


@pytest.fixture
def stubs(tmp_path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in STUBS.items():
        (folder / name).write_text("#!/bin/bash\n" + body + "\n")
        (folder / name).chmod(0o755)
    return folder


def ensure(stubs: Path, *packages: str, uid=1000, sudo=False, installed=(), **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    record = stubs.parent / "record"
    record.write_text("")
    environment = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "FAKE_UID": str(uid),
        "FAKE_SUDO": "1" if sudo else "0",
        "INSTALLED": " ".join(installed),
        "RECORD": str(record),
        **env,
    }
    result = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/lib/common.sh" && ensure_debian_packages "$@" && echo done', "bash", *packages],
        env=environment,
        capture_output=True,
        text=True,
    )
    return result, record.read_text().splitlines()


def installs(calls: list[str]) -> list[str]:
    return [call for call in calls if " install " in f" {call} "]


def test_nothing_happens_when_every_package_is_installed(stubs):
    result, calls = ensure(stubs, "nginx", "gettext-base", installed=["nginx", "gettext-base"])

    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")
    assert calls == []


def test_root_installs_the_missing_ones_after_one_line_that_names_them(stubs):
    result, calls = ensure(stubs, "nginx", "gettext-base", "shellcheck", uid=0, installed=["gettext-base"])

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "nginx shellcheck" in lines[0] and "INSTALL_SYSTEM_PACKAGES=0" in lines[0], lines
    assert [call.split()[-2:] for call in installs(calls)] == [["nginx", "shellcheck"]]
    assert not any(call.startswith("sudo") for call in calls)


def test_passwordless_sudo_installs_them_through_sudo(stubs):
    result, calls = ensure(stubs, "nginx", uid=1000, sudo=True)

    assert result.returncode == 0, result.stderr
    assert any(call.startswith("sudo ") and call.endswith(" nginx") for call in installs(calls)), calls


@pytest.mark.parametrize(
    "uid, sudo, env, why",
    [
        (1000, False, {}, "neither root nor passwordless sudo"),
        (0, False, {"INSTALL_SYSTEM_PACKAGES": "0"}, "root, but opted out"),
        (1000, True, {"INSTALL_SYSTEM_PACKAGES": "0"}, "sudo, but opted out"),
        (1000, False, {"INSTALL_SYSTEM_PACKAGES": "1"}, "asked to install without the means to"),
    ],
)
def test_otherwise_it_names_them_with_the_command_that_installs_them(stubs, uid, sudo, env, why):
    result, calls = ensure(stubs, "nginx", "pandoc", uid=uid, sudo=sudo, **env)

    assert result.returncode == 1, why
    assert "missing system packages: nginx pandoc — install them with: sudo apt-get install nginx pandoc" in result.stderr, why
    assert installs(calls) == [], why


def test_ci_keeps_installing_with_install_system_packages_1(stubs):
    result, calls = ensure(stubs, "chromium", uid=0, INSTALL_SYSTEM_PACKAGES="1")

    assert result.returncode == 0, result.stderr
    assert installs(calls)[-1].endswith(" chromium")


def test_a_failed_install_is_an_error_that_names_the_packages(stubs):
    result, calls = ensure(stubs, "pandoc", uid=0, FAKE_APT_STATUS="100")

    assert result.returncode == 1
    assert "apt-get could not install: pandoc" in result.stderr
    assert len(installs(calls)) == 2, "a second try after refreshing the package lists"


def test_an_unknown_setting_is_refused(stubs):
    result, calls = ensure(stubs, "nginx", uid=0, INSTALL_SYSTEM_PACKAGES="sometimes")

    assert result.returncode == 1
    assert "INSTALL_SYSTEM_PACKAGES" in result.stderr
    assert calls == []

