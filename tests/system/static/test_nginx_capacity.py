"""nginx's capacity and abuse limits: one set of numbers for Compose and the native stack."""

import re
import subprocess

import yaml

from conftest import ROOT, chat_limit_defaults

MAIN_CONF = (ROOT / "nginx" / "nginx.conf").read_text()


def directive(name: str, text: str = MAIN_CONF) -> str:
    return re.search(rf"^\s*{name}\s+([^;]+);", text, re.M).group(1)


def native_main_conf(tmp_path) -> str:
    script = (
        f'source "{ROOT}/scripts/lib/common.sh" && source "{ROOT}/scripts/lib/nginx.sh" && '
        f'nginx_write_main_conf "{tmp_path}" "{tmp_path}/server.conf"'
    )
    subprocess.run(["bash", "-c", script], check=True, cwd=ROOT)
    return (tmp_path / "nginx.conf").read_text()


def test_one_worker_holds_every_chat_socket_of_a_chat_process():
    # Each proxied WebSocket holds two connections: the browser's and the one to chat.
    assert int(directive("worker_connections")) >= 2 * chat_limit_defaults()["CHAT_MAX_CONNECTIONS"]
    assert int(directive("worker_rlimit_nofile")) >= 2 * int(directive("worker_connections"))
    assert directive("worker_processes") == "auto"


def test_the_compose_image_uses_its_own_main_configuration():
    dockerfile = (ROOT / "nginx" / "Dockerfile").read_text()
    assert "COPY nginx.conf /etc/nginx/nginx.conf" in dockerfile
    assert "include /etc/nginx/conf.d/*.conf;" in MAIN_CONF


def test_the_native_stack_runs_with_the_same_worker_settings(tmp_path):
    native = native_main_conf(tmp_path)
    for name in ["worker_processes", "worker_rlimit_nofile", "worker_connections"]:
        assert directive(name, native) == directive(name), name


def test_the_limits_have_the_same_defaults_in_compose_and_the_native_stack():
    script = f'source "{ROOT}/scripts/lib/common.sh" && source "{ROOT}/scripts/lib/nginx.sh" && printf "%s\\n" "${{NGINX_LIMIT_DEFAULTS[@]}}"'
    native = dict(line.split("=", 1) for line in subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split())
    environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["nginx"]["environment"]
    compose = {
        name: re.fullmatch(rf"\$\{{{name}:-(.+)\}}", str(environment[name])).group(1) for name in native
    }
    assert compose == native
    example = (ROOT / ".env.example").read_text()
    for name, value in native.items():
        assert f"\n{name}={value}\n" in example, f".env.example shows {name}'s default"


def test_no_location_sets_headers_of_its_own():
    # add_header in a location would silently drop the server's security headers there.
    template = (ROOT / "nginx" / "default.conf.template").read_text()
    for body in re.findall(r"\n  location [^{]+\{(.*?)\n  \}", template, re.S):
        assert "add_header" not in body
