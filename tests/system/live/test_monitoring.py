"""Monitoring, live: `MONITORING=1 scripts/stack up` with two chat replicas (and so a Redis), real
traffic through nginx, then the stack's Prometheus asked what it saw.

This needs a stack of its own (not the one tests/system/run starts), in target/monitoring-stack,
stopped at the end; Prometheus scrapes every second (PROMETHEUS_SCRAPE_INTERVAL) so the test does
not wait long. It checks that every target is up, that the counters moved by what was done, that
every query of every dashboard panel and every recording and alert rule returns data without
error, and that neither service's /metrics nor nginx's stub_status is reachable through the site.
"""

import json
import re
import subprocess
import time
from contextlib import ExitStack

import pytest
import requests
from websockets.sync.client import connect

from conftest import PASSWORD, Visitor, unique_email
from private_stack import ROOT, PrivateStack, running
from test_chat import ticket, ws_url
from test_edge_nginx import free_port

STACK_DIR = ROOT / "target" / "monitoring-stack"
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
# What Grafana puts in a query before sending it; the test asks Prometheus for the same.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "5s", "$__range": "5m"}


class MonitoredStack(PrivateStack):
    def __init__(self):
        self.prometheus_port = free_port()
        super().__init__(STACK_DIR.name, {
            "CHAT_REPLICAS": "2",
            "MONGODB_DB": "webchat_monitoring",
            "MONITORING": "1",
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "PROMETHEUS_SCRAPE_INTERVAL": "1s",
        })
        self.prometheus = f"http://127.0.0.1:{self.prometheus_port}"
        self.http = requests.Session()
        self.http.trust_env = False

    def api(self, path: str, **params) -> dict:
        answer = self.http.get(f"{self.prometheus}/api/v1/{path}", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def stack():
    yield from running(MonitoredStack())


def eventually(check, seconds: float = 30):
    """Retries `check` (an assertion) until it passes or `seconds` pass; then fails with it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def traffic(stack):
    """What a person does: registers, logs in (once wrongly), opens a chat in two tabs, talks; and
    a handshake with a forged ticket is refused."""
    email = unique_email()
    person = Visitor(stack.base_url)
    assert person.register(email, PASSWORD).status_code == 303
    returning = Visitor(stack.base_url)
    assert returning.login(email, "not the password at all").status_code == 401
    assert returning.login(email, PASSWORD).status_code == 303
    room_id = person.create_room(f"Monitored room {time.time_ns()}")
    with ExitStack() as opened:
        tabs = [
            opened.enter_context(connect(
                ws_url(stack.base_url), additional_headers={"Authorization": f"Bearer {ticket(who, room_id)}"}, proxy=None
            ))
            for who in (person, returning)
        ]
        for tab in tabs:
            assert json.loads(tab.recv(timeout=10))["type"] == "welcome"
        for n in range(5):
            tabs[0].send(json.dumps({"type": "message", "text": f"hello {n}"}))
        for tab in tabs:
            seen = 0
            while seen < 5:
                if json.loads(tab.recv(timeout=10))["type"] == "message":
                    seen += 1
    with pytest.raises(Exception, match="401"):
        with connect(ws_url(stack.base_url), additional_headers={"Authorization": "Bearer forged.ticket.here"}, proxy=None):
            pass
    return {"messages": 5, "members": 2}


def test_up_prints_the_prometheus_address_and_status_lists_it(stack):
    status = stack.run("status")
    assert status.returncode == 0, status.stdout
    rows = stack.status_lines()
    assert f"http://127.0.0.1:{stack.prometheus_port}/" in rows["prometheus"]
    assert "running" in rows["nginx-exporter"]
    for replica in ("website", "chat-1", "chat-2"):
        assert re.search(r"metrics 127\.0\.0\.1:\d+", rows[replica]), rows[replica]
    assert f"Prometheus: http://127.0.0.1:{stack.prometheus_port}/" in stack.up_log


def test_promtool_accepts_the_rendered_configuration(stack):
    rendered = STACK_DIR / "prometheus" / "prometheus.yml"
    result = subprocess.run(["promtool", "check", "config", str(rendered)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "static_configs" in rendered.read_text() and "dns_sd_configs" not in rendered.read_text()


def test_every_target_is_up(stack):
    def all_up():
        targets = stack.api("targets")["activeTargets"]
        jobs = sorted(target["labels"]["job"] for target in targets)
        assert jobs == ["chat", "chat", "nginx", "prometheus", "website"], jobs
        down = [(t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"]
        assert not down, down
    eventually(all_up)


def test_the_counters_moved_by_what_was_done(stack, traffic):
    expected = {
        'sum(webchat_website_registrations_total{result="ok"})': 1,
        'sum(webchat_website_logins_total{result="ok"})': 1,
        'sum(webchat_website_logins_total{result="invalid_credentials"})': 1,
        'sum(webchat_website_tickets_total{result="issued"})': 2,
        'sum(webchat_website_requests_total{route="/register",method="POST",status="303"})': 1,
        'sum(webchat_website_password_hash_duration_seconds_count{operation="hash"})': 1,
        'sum(webchat_website_password_hash_duration_seconds_count{operation="verify"})': 2,
        "sum(webchat_website_mongodb_operation_duration_seconds_count)": 1,
        "sum(webchat_website_session_cache_lookups_total)": 1,
        'sum(webchat_chat_handshakes_total{result="ok"})': 2,
        'sum(webchat_chat_handshakes_total{result="bad_ticket"})': 1,
        "sum(webchat_chat_messages_received_total)": traffic["messages"],
        # Both members get each message (and the presence events).
        "sum(webchat_chat_deliveries_total)": traffic["messages"] * traffic["members"],
        "sum(webchat_chat_delivered_bytes_total)": traffic["messages"] * traffic["members"] * 40,
        "sum(webchat_chat_fanout_duration_seconds_count)": traffic["messages"],
        "sum(webchat_chat_broker_published_total)": traffic["messages"],
        "sum(webchat_chat_broker_received_total)": traffic["messages"],
        "sum(webchat_chat_broker_lag_seconds_count)": traffic["messages"],
        "sum(nginx_http_requests_total)": 10,
    }

    def moved():
        short = {expr: (stack.value(expr), least) for expr, least in expected.items() if stack.value(expr) < least}
        assert not short, short
    eventually(moved)

    def both_tabs_closed():
        assert stack.value('sum(webchat_chat_disconnects_total{reason=~"client_closed|gone"})') >= 2
    eventually(both_tabs_closed)
    assert stack.value("min(webchat_chat_broker_up)") == 1


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, query) of every panel of every provisioned dashboard."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((path.name, panel["title"], expr))
    return queries


def test_every_dashboard_query_returns_data(stack, traffic):
    queries = dashboard_queries()
    assert len(queries) >= 30

    def all_answer():
        empty = [(title, expr) for _, title, expr in queries if not stack.query(expr)]
        assert not empty, empty
    eventually(all_answer, 60)


def rules() -> tuple[list[dict], list[dict]]:
    import yaml
    groups = yaml.safe_load(RULES.read_text())["groups"]
    every = [rule for group in groups for rule in group["rules"]]
    return [r for r in every if "record" in r], [r for r in every if "alert" in r]


def alert_signals(expr: str) -> list[str]:
    """The queries behind an alert: each `or` branch without its threshold comparison (an
    `absent(...)` branch is there for when the series is gone, and answers nothing while it is not)."""
    signals = []
    for branch in re.split(r"\s+or\s+", expr):
        if branch.startswith("absent("):
            continue
        signals.append(re.sub(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$", "", branch))
    return signals


def test_every_rule_evaluates_without_error_and_its_signal_returns_data(stack, traffic):
    recording, alerts = rules()
    assert {rule["alert"] for rule in alerts} >= {
        "ChatDown", "ChatReplicaDown", "SlowConsumerDropsRising", "Website5xxRatioHigh", "LoginSlow", "RedisUnreachable"
    }

    def evaluated():
        groups = stack.api("rules")["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        assert len(loaded) == len(recording) + len(alerts)
        failing = [(rule["name"], rule.get("lastError")) for rule in loaded if rule["health"] != "ok"]
        assert not failing, failing
        for rule in recording:
            assert stack.query(rule["record"]), f"the recording rule {rule['record']} has no data"
        for rule in alerts:
            for signal in alert_signals(rule["expr"]):
                assert stack.query(signal), f"{rule['alert']}: {signal} has no data"
    eventually(evaluated, 60)
    firing = [alert["labels"]["alertname"] for alert in stack.api("alerts")["alerts"]]
    assert not firing, f"a healthy stack pages nobody: {firing}"


def test_metrics_are_never_reachable_through_nginx(base_url, stack):
    http = requests.Session()
    http.trust_env = False
    for site in (base_url, stack.base_url):
        for path in ("/metrics", "/stub_status", "/metrics/", "/ws/../metrics"):
            answer = http.get(site + path, timeout=10, allow_redirects=False)
            assert answer.status_code == 404, (site, path, answer.status_code)
            assert "webchat_" not in answer.text and "Active connections" not in answer.text
    # The replicas do serve it, each on its own port on 127.0.0.1.
    rows = stack.status_lines()
    port = re.search(r"metrics 127\.0\.0\.1:(\d+)", rows["chat-1"]).group(1)
    assert "webchat_chat_connections" in http.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def test_down_stops_prometheus_and_the_exporter_too(stack):
    stopped = stack.run("down")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped prometheus" in stopped.stderr and "stopped nginx-exporter" in stopped.stderr
    with pytest.raises(requests.ConnectionError):
        stack.http.get(f"{stack.prometheus}/-/ready", timeout=2)
