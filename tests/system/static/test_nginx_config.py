"""nginx/default.conf.template: `nginx -t` of both renderings, proxying, and what it logs.

The template is rendered the way each run does it (scripts/lib/nginx.sh, the same envsubst the
official image uses): with the Compose service names, and natively with upstream groups of
127.0.0.1 ports, for one replica of each service and for several. Upstreams are named through
variables, so the Compose names need not resolve on this machine.
"""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, chat_limit_defaults

TEMPLATE = ROOT / "nginx" / "default.conf.template"
COMPOSE_VALUES = {
    "NGINX_LISTEN": "80",
    "NGINX_RESOLVER": "127.0.0.11",
    "NGINX_ACCESS_LOG": "/dev/stdout",
    "NGINX_UPSTREAMS": "# none: Docker's DNS answers website and chat with every replica",
    "WEBSITE_UPSTREAM": "website:8000",
    "CHAT_UPSTREAM": "chat:9000",
    "NGINX_STATUS_LISTEN": "8081",
}
# The native stack's replicas: (website ports, chat ports).
ONE_EACH = ([18000], [19000])
SEVERAL = ([18000, 18001], [19000, 19001, 19002])


def native_values(tmp: Path, replicas=ONE_EACH) -> dict:
    """The values scripts/stack renders with: its listen address and log, and the upstream groups
    that scripts/lib/nginx.sh makes of the replicas' ports."""
    website, chat = (" ".join(map(str, ports)) for ports in replicas)
    groups = nginx_sh(
        f'nginx_native_upstreams "{website}" "{chat}" && '
        'printf "%s\\0" "$NGINX_UPSTREAMS" "$WEBSITE_UPSTREAM" "$CHAT_UPSTREAM"'
    )
    assert groups.returncode == 0, groups.stderr
    upstreams, website_upstream, chat_upstream, _ = groups.stdout.split("\0")
    return {
        "NGINX_LISTEN": "127.0.0.1:18080",
        "NGINX_RESOLVER": "127.0.0.1",
        "NGINX_ACCESS_LOG": str(tmp / "access.log"),
        "NGINX_UPSTREAMS": upstreams,
        "WEBSITE_UPSTREAM": website_upstream,
        "CHAT_UPSTREAM": chat_upstream,
        "NGINX_STATUS_LISTEN": "127.0.0.1:18081",
    }


def nginx_sh(script: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs bash with scripts/lib/common.sh and scripts/lib/nginx.sh sourced."""
    prelude = f'source "{ROOT}/scripts/lib/common.sh" && source "{ROOT}/scripts/lib/nginx.sh" && '
    return subprocess.run(
        ["bash", "-c", prelude + script], env=env, capture_output=True, text=True, cwd=ROOT
    )


def render(tmp: Path, values: dict) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "default.conf"
    result = nginx_sh(f'nginx_render_template "{out}"', env={"PATH": "/usr/bin:/bin", **values})
    assert result.returncode == 0, result.stderr
    return out


def nginx_test(tmp: Path, server_conf: Path) -> subprocess.CompletedProcess:
    return nginx_sh(f'nginx_write_main_conf "{tmp}" "{server_conf}" && nginx_test_conf "{tmp}"')


@pytest.fixture
def values(tmp_path) -> dict:
    return {
        "compose": COMPOSE_VALUES,
        "native": native_values(tmp_path / "native"),
        "native-replicas": native_values(tmp_path / "native-replicas", SEVERAL),
    }


@pytest.fixture
def rendered(tmp_path, values) -> dict:
    return {which: render(tmp_path / which, given) for which, given in values.items()}


@pytest.mark.parametrize("which", ["compose", "native", "native-replicas"])
def test_nginx_accepts_the_rendered_configuration(rendered, which):
    conf = rendered[which]
    result = nginx_test(conf.parent, conf)
    assert result.returncode == 0, result.stderr + (conf.parent / "error.log").read_text()


def test_nginx_t_does_reject_a_broken_configuration(tmp_path):
    broken = tmp_path / "default.conf"
    broken.write_text("server { listen 127.0.0.1:18080; proxy_pass; }\n")
    assert nginx_test(tmp_path, broken).returncode != 0


@pytest.mark.parametrize("which", ["compose", "native", "native-replicas"])
def test_each_rendering_is_the_template_with_only_its_variables_filled_in(rendered, values, which):
    # The template's text between the variables, each variable a group: a rendering must match it
    # whole, every group holding exactly that variable's value. The abuse limits have the same
    # defaults in every rendering; the topology is all that differs.
    template = TEMPLATE.read_text()
    names = re.findall(r"\$\{([A-Z_]+)\}", template)
    literal = re.split(r"\$\{[A-Z_]+\}", template)
    pattern = re.escape(literal[0]) + "".join(f"(.*?){re.escape(text)}" for text in literal[1:])
    match = re.fullmatch(pattern, rendered[which].read_text(), re.S)

    assert match, f"the {which} rendering differs from the template outside its variables"
    defaults = dict(default.split("=", 1) for default in nginx_sh('printf "%s\\n" "${NGINX_LIMIT_DEFAULTS[@]}"').stdout.split())
    expected = {**defaults, **values[which]}
    assert list(match.groups()) == [expected[name] for name in names]


def test_every_template_variable_is_substituted_and_nginx_variables_are_kept(rendered):
    text = rendered["compose"].read_text()
    assert "${" not in text
    assert "set $website_upstream http://website:8000;" in text
    assert "proxy_set_header X-Real-IP $remote_addr;" in text


def upstream_groups(text: str) -> dict[str, list[str]]:
    """The upstream blocks of a rendering: name -> the directives inside, one a line."""
    return {
        name: [line.strip() for line in body.strip().splitlines()]
        for name, body in re.findall(r"^upstream (\S+) \{\n(.*?)^\}", text, re.M | re.S)
    }


def test_natively_each_service_is_a_group_of_all_its_replicas(rendered):
    text = rendered["native-replicas"].read_text()
    website_ports, chat_ports = SEVERAL

    groups = upstream_groups(text)

    assert set(groups) == {"website", "chat"}
    assert [line for line in groups["website"] if line.startswith("server ")] == [
        f"server 127.0.0.1:{port} max_fails=0;" for port in website_ports
    ]
    assert [line for line in groups["chat"] if line.startswith("server ")] == [
        f"server 127.0.0.1:{port} max_fails=0;" for port in chat_ports
    ]
    # Round robin for pages; a new WebSocket to the replica with the fewest open ones.
    assert "least_conn;" in groups["chat"] and "least_conn;" not in groups["website"]
    # Shared by nginx's workers, so that the counts and the turn are the whole nginx's.
    assert "zone website_replicas 64k;" in groups["website"] and "zone chat_replicas 64k;" in groups["chat"]
    assert "set $website_upstream http://website;" in text
    assert "set $chat_upstream http://chat;" in text


def test_one_replica_each_is_a_group_of_one(rendered):
    groups = upstream_groups(rendered["native"].read_text())
    assert [line for line in groups["website"] if line.startswith("server ")] == ["server 127.0.0.1:18000 max_fails=0;"]
    assert [line for line in groups["chat"] if line.startswith("server ")] == ["server 127.0.0.1:19000 max_fails=0;"]


def test_under_compose_the_service_names_are_resolved_per_request_through_dockers_dns(rendered):
    text = rendered["compose"].read_text()
    # No group: a name in a group would be resolved once, at start, and miss later replicas.
    assert upstream_groups(text) == {}
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in text
    assert "set $website_upstream http://website:8000;" in text
    assert "set $chat_upstream http://chat:9000;" in text


def test_every_location_proxies_through_a_variable():
    # A variable is what makes nginx resolve the Compose names per request (and find a group natively).
    passes = re.findall(r"proxy_pass (\S+);", TEMPLATE.read_text())
    assert passes and set(passes) == {"$website_upstream", "$chat_upstream"}


def test_upstream_groups_refuse_a_replica_without_a_port():
    result = nginx_sh('nginx_native_upstreams "" "19000"')
    assert result.returncode != 0
    assert "no replica ports" in result.stderr


def test_the_template_variables_are_the_same_everywhere():
    in_template = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text()))
    in_lib = set(nginx_sh('echo "${NGINX_TEMPLATE_VARS[@]}"').stdout.split())
    dockerfile = (ROOT / "nginx" / "Dockerfile").read_text()
    in_filter = set(re.search(r'NGINX_ENVSUBST_FILTER="\^\(([A-Z_|]+)\)\$"', dockerfile).group(1).split("|"))
    limits = {
        "NGINX_WS_PER_ADDRESS",
        "NGINX_ACCOUNT_RATE",
        "NGINX_ACCOUNT_BURST",
        "NGINX_TICKET_RATE",
        "NGINX_TICKET_BURST",
        "NGINX_TICKET_SESSION_RATE",
        "NGINX_TICKET_SESSION_BURST",
    }
    assert in_template == in_lib == in_filter == set(COMPOSE_VALUES) | limits
    compose = (ROOT / "docker-compose.yml").read_text()
    for name, value in COMPOSE_VALUES.items():
        assert re.search(rf'^\s+{name}: "?{re.escape(value)}"?( #.*)?$', compose, re.M), name


def test_rendering_refuses_a_missing_variable(tmp_path):
    values = native_values(tmp_path)
    del values["CHAT_UPSTREAM"]
    result = nginx_sh(f'nginx_render_template "{tmp_path}/out.conf"', env={"PATH": "/usr/bin:/bin", **values})
    assert result.returncode != 0
    assert "CHAT_UPSTREAM" in result.stderr


def location(text: str, name: str) -> str:
    return re.search(rf"location {re.escape(name)} \{{(.*?)\n  \}}", text, re.S).group(1)


def test_websocket_path_goes_to_chat_with_upgrade_headers_and_a_long_timeout():
    ws = location(TEMPLATE.read_text(), "= /ws")
    assert "proxy_pass $chat_upstream;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_read_timeout 1h;" in ws
    # A location's own proxy_set_header list replaces the server's: the forwarding headers again.
    for header in ["Host $http_host", "X-Real-IP $remote_addr", "X-Forwarded-For $remote_addr", "X-Forwarded-Host $http_host"]:
        assert f"proxy_set_header {header};" in ws


def test_everything_else_goes_to_the_website():
    assert "proxy_pass $website_upstream;" in location(TEMPLATE.read_text(), "/")


def test_client_address_headers_are_overwritten_never_appended():
    text = TEMPLATE.read_text()
    assert "$proxy_add_x_forwarded_for" not in text
    assert "proxy_set_header X-Real-IP $remote_addr;" in text


def access_log_format() -> str:
    text = TEMPLATE.read_text()
    return re.search(r"log_format webchat_json escape=json(.*?);\n", text, re.S).group(1)


def test_access_log_records_timing_status_size_and_upstream():
    fmt = access_log_format()
    for variable in ["$request_time", "$upstream_response_time", "$upstream_connect_time", "$status", "$bytes_sent", "$upstream_addr", "$uri"]:
        assert variable in fmt


def test_access_log_never_records_tickets_cookies_or_query_strings():
    fmt = access_log_format()
    for variable in ["$request_uri", "$request ", "$args", "$query_string", "$http_authorization", "$http_sec_websocket_protocol", "$http_cookie", "$http_referer", "$arg_"]:
        assert variable not in fmt + " ", variable


def test_the_images_envsubst_filter_selects_exactly_the_template_variables():
    # The official image's 20-envsubst-on-templates.sh picks the variables to substitute with
    # this awk program; other variables of the container (HOME, NGINX_VERSION...) stay untouched.
    dockerfile = (ROOT / "nginx" / "Dockerfile").read_text()
    filter_ = re.search(r'NGINX_ENVSUBST_FILTER="([^"]+)"', dockerfile).group(1)
    environment = {**COMPOSE_VALUES, "HOME": "/root", "NGINX_VERSION": "1.28.0", "NGINX_LISTEN_EXTRA": "x", "PATH": "/usr/bin:/bin"}
    program = 'END { for (name in ENVIRON) { print ( name ~ /' + filter_ + '/ ) ? name : "" } }'

    picked = subprocess.run(["awk", program], env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)

    assert set(picked.stdout.split()) == set(COMPOSE_VALUES)


# --- the /ws read timeout, the chat's ping interval and what the docs say about them ------------

NGINX_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def nginx_seconds(value: str) -> float:
    """An nginx time (`30s`, `1h`, `1m30s`, `60`: seconds without a unit) in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d)?", value)
    assert "".join(n + u for n, u in parts) == value, f"not an nginx time: {value}"
    return sum(int(n) * NGINX_UNITS[u or "s"] for n, u in parts)


def read_timeouts() -> dict[str, float]:
    """proxy_read_timeout of the server block (the default of every location) and of /ws."""
    text = TEMPLATE.read_text()
    ws = location(text, "= /ws")
    outside_locations = re.sub(r"\n  location [^{]*\{.*?\n  \}", "", text, flags=re.S)
    [server] = re.findall(r"^  proxy_read_timeout (\S+);", outside_locations, re.M)
    [websocket] = re.findall(r"proxy_read_timeout (\S+);", ws)
    return {"server": nginx_seconds(server), "/ws": nginx_seconds(websocket)}


def as_written(seconds: float) -> str:
    """How the docs write a duration: `1 h`, `2 min`, `30 s`."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def test_the_docs_give_nginxs_read_timeouts_as_configured_and_the_ping_interval_is_well_under_the_ws_one():
    timeouts = read_timeouts()
    ping = chat_limit_defaults()["CHAT_PING_INTERVAL_SECS"]
    readme = (ROOT / "chat" / "README.md").read_text()
    [ping_row] = [line for line in readme.splitlines() if line.startswith("| `CHAT_PING_INTERVAL_SECS` |")]

    # "Well under": a third at most, so that two pings in a row may go missing before nginx gives up.
    assert ping * 3 <= timeouts["/ws"], f"CHAT_PING_INTERVAL_SECS {ping} s against /ws's {timeouts['/ws']} s"
    assert f"| `{ping}` |" in ping_row, "the README's default is Limits::default's"
    assert as_written(timeouts["/ws"]) in ping_row and "/ws" in ping_row, ping_row
    # Wherever a doc gives proxy_read_timeout a value, it is one the template sets.
    configured = {as_written(seconds) for seconds in timeouts.values()}
    tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        for line in (ROOT / name).read_text().splitlines():
            if "proxy_read_timeout" in line:
                durations = {f"{n} {u}" for n, u in re.findall(r"\b(\d+) ?(ms|s|min|h)\b", line)}
                assert durations <= configured, f"{name}: {line.strip()} (configured: {sorted(configured)})"
