"""The collections as the running system stores them, for the database chapter (`@db-listing`).

The report build starts a private native stack (`scripts/stack`, with its own MongoDB stand-in,
ports and folder under the build folder), fills its database through the real website over HTTP
the way a browser does (two people register, create rooms, sign out and sign in again), prints the
collections with `scripts/data`, and stops the stack. Nothing in the listing is written by hand.
"""

from __future__ import annotations

import html
import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class LiveDataError(RuntimeError):
    """The stack could not be started or filled; the message names its logs."""


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    rooms: tuple[str, ...]


# What the scenario does, in order: each person registers and creates their rooms; then each signs
# out and signs in again.
PEOPLE = (
    Person("anna@example.com", "anna-long-password-1", ("Чай и разговоры", "Rust и WebSocket")),
    Person("boris@example.com", "boris-long-password-2", ("Поход в горы",)),
)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A cookie jar and the Origin header, like a browser on the site; redirects not followed."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect()
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Origin": self.base_url})
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def post(self, path: str, form: dict[str, str], expect: int = 303) -> None:
        status, body = self.request(path, form)
        if status != expect:
            raise LiveDataError(f"POST {path} answered {status}, not {expect}: {body[:300]}")

    def csrf_token(self) -> str:
        _, page = self.request("/")
        match = _CSRF.search(page)
        if not match:
            raise LiveDataError("the signed-in home page has no csrf_token field")
        return html.unescape(match.group(1))


def fill_through_the_website(base_url: str) -> None:
    browsers = {}
    for person in PEOPLE:
        browser = browsers[person.email] = Browser(base_url)
        browser.post("/register", {"email": person.email, "password": person.password})
        for title in person.rooms:
            browser.post("/rooms", {"title": title, "csrf_token": browser.csrf_token()})
    for person in PEOPLE:
        browser = browsers[person.email]
        browser.post("/logout", {"csrf_token": browser.csrf_token()})
        browser.post("/login", {"email": person.email, "password": person.password})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listing(root: Path, build: Path) -> str:
    """Starts the stack, runs the scenario, returns `scripts/data`'s listing, stops the stack."""
    stack_dir = build / "stack"
    port = _free_port()
    # A database of its own: never the MongoDB of MONGODB_URI (the test command's, full of tests).
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_DB", "HTTP_PORT", "STACK_DIR")}
    env |= {"STACK_DIR": str(stack_dir), "HTTP_PORT": str(port)}
    stack = root / "scripts" / "stack"

    def run(*command) -> str:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            what = " ".join(Path(str(part)).name if i == 0 else str(part) for i, part in enumerate(command))
            raise LiveDataError(f"{what} failed (logs in {stack_dir / 'logs'}):\n{result.stderr.strip()[-2000:]}")
        return result.stdout

    subprocess.run([stack, "down"], env=env, capture_output=True, timeout=120)  # one left by a killed build
    shutil.rmtree(stack_dir, ignore_errors=True)
    try:
        run(stack, "up")
        fill_through_the_website(f"http://127.0.0.1:{port}")
        return run(root / "scripts" / "data")
    finally:
        subprocess.run([stack, "down"], env=env, capture_output=True, timeout=120)


def markdown(text: str) -> str:
    """The listing as a fenced block (the report's listing style)."""
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"
