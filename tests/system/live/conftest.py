"""A running stack (tests/system/run starts it) and a browser-like client for it.

Everything goes through nginx, at WEBCHAT_URL, the way a browser reaches the site: a cookie jar,
an Origin header on every POST, and the CSRF token read from the page's HTML.
"""

import os
import re
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

ROOM_LINK = re.compile(r"^/rooms/([0-9a-f]{24})$")


class Page(HTMLParser):
    """The parts of a page a test looks at: hidden CSRF fields and links with their text."""

    def __init__(self, html: str):
        super().__init__()
        self.csrf_tokens: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._open_link: list[str] | None = None
        self._href = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "csrf_token":
            self.csrf_tokens.append(attrs.get("value") or "")
        elif tag == "meta" and attrs.get("name") == "csrf-token":
            self.csrf_tokens.append(attrs.get("content") or "")
        elif tag == "a":
            self._href, self._open_link = attrs.get("href") or "", []

    def handle_data(self, data):
        if self._open_link is not None:
            self._open_link.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._open_link is not None:
            self.links.append((self._href, " ".join("".join(self._open_link).split())))
            self._open_link = None

    def room_ids_titled(self, title: str) -> list[str]:
        return [m.group(1) for href, text in self.links if (m := ROOM_LINK.match(href)) and title in text]


@dataclass
class Visitor:
    """One person with one browser: keeps cookies, sends Origin, follows no redirect by itself."""

    base_url: str
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.http.trust_env = False  # straight to the stack, never through a proxy from the environment

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base_url + path, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, origin: str | None = None, **kwargs) -> requests.Response:
        headers = {"Origin": origin or self.base_url, **kwargs.pop("headers", {})}
        return self.http.post(self.base_url + path, headers=headers, allow_redirects=False, timeout=10, **kwargs)

    def page(self, path: str) -> Page:
        response = self.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code}"
        return Page(response.text)

    def register(self, email: str, password: str) -> requests.Response:
        return self.post("/register", data={"email": email, "password": password})

    def login(self, email: str, password: str) -> requests.Response:
        return self.post("/login", data={"email": email, "password": password})

    def csrf_token(self) -> str:
        tokens = self.page("/").csrf_tokens
        assert tokens, "a signed-in page carries the CSRF token in its forms"
        return tokens[0]

    def create_room(self, title: str) -> str:
        """Creates the room and returns its id, found by searching for the title (which every
        test makes unique), the way anyone would reach it."""
        response = self.post("/rooms", data={"title": title, "csrf_token": self.csrf_token()})
        assert response.status_code == 303, response.text[:500]
        ids = self.search(title).room_ids_titled(title)
        assert len(ids) == 1, f"the new room {title!r} is found once"
        return ids[0]

    def search(self, text: str) -> Page:
        return self.page("/search?" + requests.compat.urlencode({"q": text}))

    def ticket(self, room_id: str) -> requests.Response:
        return self.post(f"/api/rooms/{room_id}/ticket", headers={"X-CSRF-Token": self.csrf_token()})


def unique_email() -> str:
    return f"system-{uuid.uuid4().hex[:12]}@example.test"


PASSWORD = "long enough password 42"


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("WEBCHAT_URL")
    if not url:
        pytest.exit("WEBCHAT_URL is not set: run these through tests/system/run", returncode=2)
    return url.rstrip("/")


@pytest.fixture(scope="session")
def stack_logs() -> Path:
    return Path(os.environ["STACK_DIR"]) / "logs"


@pytest.fixture
def visitor(base_url) -> Visitor:
    return Visitor(base_url)


def registered(base_url: str) -> Visitor:
    """A visitor who has just registered at `base_url` (and so is signed in)."""
    person = Visitor(base_url)
    response = person.register(unique_email(), PASSWORD)
    assert response.status_code == 303, response.text[:500]
    return person


@pytest.fixture
def member(base_url) -> Visitor:
    """A visitor who has just registered (and so is signed in)."""
    return registered(base_url)
