"""The edge through the real stack: nginx carries a thousand chat clients, and its per-address
limits answer 429 with Retry-After in front of the real website and chat service.

Every test client comes from loopback, so the tests spread themselves over source addresses of
127.0.0.0/8 (all of it is this machine): a limit is reached from an address of its own, and the
thousand clients come from a hundred addresses, within the per-address socket cap. The limits in
force are the stack's, which tests/system/run sets (NGINX_* in the environment).
"""

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import random
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import websockets

from conftest import PASSWORD, Visitor, unique_email


def fresh_address() -> str:
    """A loopback address no other test (or earlier run against the same stack) has used, so
    that its budget at the edge is whole."""
    return f"127.{random.randint(100, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def limit(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def stack_secret() -> bytes:
    secret = os.environ.get("JWT_SECRET")
    if secret:
        return secret.encode()
    return (Path(os.environ["STACK_DIR"]) / "jwt_secret").read_text().strip().encode()


def self_signed_ticket(email: str, room_id: str) -> str:
    """A ticket of the contract signed with the stack's secret: a thousand clients without a
    thousand accounts (an account costs an argon2 hash)."""
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    now = int(time.time())
    claims = {"email": email, "room": "Crowd", "room_id": room_id, "iat": now, "exp": now + 60, "iss": "website", "aud": "chat"}
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(stack_secret(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def post_from(base_url: str, source: str, path: str, body: str = "", headers: dict | None = None):
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10, source_address=(source, 0))
    conn.request("POST", path, body=body, headers={"Origin": base_url, "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def flood(base_url: str, source: str, path: str, count: int, **kwargs) -> list:
    return [post_from(base_url, source, path, **kwargs) for _ in range(count)]


def assert_limited_after(responses: list, allowed: int, what: str):
    """Refused with 429 and Retry-After once over the budget, and not before."""
    statuses = [r.status for r in responses]
    assert 429 not in statuses[:allowed], f"{what}: refused within the burst: {statuses}"
    refused = [r for r in responses if r.status == 429]
    assert refused, f"{what}: never refused: {statuses}"
    for response in refused:
        assert int(response.getheader("Retry-After")) > 0, what
        assert response.getheader("Content-Security-Policy"), what


def test_registration_is_limited_per_address(base_url):
    burst = limit("NGINX_ACCOUNT_BURST", 20)
    # Invalid forms: they cost the website nothing, and count at the edge all the same.
    responses = flood(base_url, fresh_address(), "/register", burst + 5, body="email=not-an-email&password=x")
    assert_limited_after(responses, burst, "POST /register")


def test_login_is_limited_per_address(base_url):
    burst = limit("NGINX_ACCOUNT_BURST", 20)
    # A new account each time: the website's own throttle (per account) stays out of the way.
    source = fresh_address()
    responses = [
        post_from(base_url, source, "/login", body=f"email=nobody-{i}%40example.test&password=x")
        for i in range(burst + 5)
    ]
    # The website's own throttle (failures per client address) may refuse first: either way
    # the answer is 429 with Retry-After.
    assert_limited_after(responses, 0, "POST /login")


def signed_in_with_room(base_url) -> tuple[Visitor, str, dict]:
    """A new person, a room of theirs, and the headers their chat page asks for a ticket with."""
    person = Visitor(base_url)
    assert person.register(unique_email(), PASSWORD).status_code == 303
    room_id = person.create_room(f"Limits {uuid.uuid4().hex[:8]}")
    cookie = "; ".join(f"{c.name}={c.value}" for c in person.http.cookies)
    return person, room_id, {"Cookie": cookie, "X-CSRF-Token": person.csrf_token()}


def test_tickets_are_limited_per_person_and_session_and_one_loop_locks_no_one_else_out(base_url):
    _, room_id, headers = signed_in_with_room(base_url)
    _, other_room_id, other_headers = signed_in_with_room(base_url)
    source = fresh_address()
    burst = limit("NGINX_TICKET_SESSION_BURST", 20)
    responses = flood(base_url, source, f"/api/rooms/{room_id}/ticket", burst + 10, headers=headers)
    # The page's own pace (a page open and a few reconnects, each tab of the browser) passes; a
    # loop is refused, by nginx's per-session limit or the website's per-person budget, whichever
    # is smaller.
    assert [r.status for r in responses[:10]] == [200] * 10
    assert_limited_after(responses, 10, "POST /api/rooms/{id}/ticket")
    # Behind the same address (a NAT), someone else still gets their ticket.
    assert post_from(base_url, source, f"/api/rooms/{other_room_id}/ticket", headers=other_headers).status == 200


def test_tickets_are_limited_per_address_whatever_the_cookie(base_url):
    # A client making up a new session cookie each time: the website answers each 401, and nginx's
    # per-address limit ends it. The flood is parallel, so that the refill (NGINX_TICKET_RATE) does
    # not keep up with it; it stops at the first refusal.
    burst = limit("NGINX_TICKET_BURST", 1000)
    source = fresh_address()
    path = f"/api/rooms/{uuid.uuid4().hex[:24]}/ticket"

    def one(i: int):
        return post_from(base_url, source, path, headers={"Cookie": f"session=made-up-{i}-{uuid.uuid4().hex}"})

    responses = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for start in range(0, 4 * burst, 64):
            responses += pool.map(one, range(start, start + 64))
            if any(r.status == 429 for r in responses):
                break
    passed = [r.status for r in responses if r.status != 429]
    # Everything within the burst (and the one before it) reached the website, which refused it.
    assert len(passed) >= burst + 1, f"refused within the burst: {len(passed)} passed"
    assert set(passed) == {401}, set(passed)
    assert_limited_after(responses, 0, "POST /api/rooms/{id}/ticket with made-up cookies")


def ws_url(base_url: str) -> str:
    return "ws" + base_url.removeprefix("http") + "/ws"


async def open_chat(base_url: str, email: str, room_id: str, source: str):
    return await websockets.connect(
        ws_url(base_url),
        subprotocols=["chat.v1", f"bearer.{self_signed_ticket(email, room_id)}"],
        origin=base_url,
        open_timeout=30,
        proxy=None,
        local_addr=(source, 0),
        max_queue=None,
    )


async def welcome_of(connection) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(connection.recv(), 30))
        if event["type"] == "welcome":
            return event


def test_sockets_beyond_the_per_address_cap_get_429(base_url):
    cap = limit("NGINX_WS_PER_ADDRESS", 1000)
    room_id = uuid.uuid4().hex[:24]

    async def scenario():
        source = fresh_address()
        held = [await open_chat(base_url, f"cap-{i}@example.test", room_id, source) for i in range(cap)]
        try:
            try:
                await open_chat(base_url, "one-too-many@example.test", room_id, source)
            except websockets.exceptions.InvalidStatus as refused:
                assert refused.response.status_code == 429
                assert int(refused.response.headers["Retry-After"]) > 0
            else:
                raise AssertionError(f"socket {cap + 1} from one address was let in")
            # Another address still gets in.
            other = await open_chat(base_url, "elsewhere@example.test", room_id, fresh_address())
            await welcome_of(other)
            await other.close()
        finally:
            await asyncio.gather(*(c.close() for c in held))

    asyncio.run(scenario())


def test_a_thousand_chat_clients_get_in_through_nginx(base_url):
    # Ten per address and per room: what is measured is nginx's connections, not the fan-out.
    clients, per_address = 1000, 10
    rooms = [uuid.uuid4().hex[:24] for _ in range(clients // per_address)]

    async def scenario():
        async def one(i: int):
            group = i // per_address
            source = f"127.0.{1 + group // 250}.{1 + group % 250}"
            connection = await open_chat(base_url, f"crowd-{i}@example.test", rooms[group], source)
            await welcome_of(connection)
            return connection

        results = []
        # In waves, as a crowd arrives, not as one SYN flood against the listen backlog.
        for start in range(0, clients, 100):
            results += await asyncio.gather(*(one(i) for i in range(start, start + 100)), return_exceptions=True)
        connected = [c for c in results if not isinstance(c, BaseException)]
        failures = [repr(c) for c in results if isinstance(c, BaseException)]
        await asyncio.gather(*(c.close() for c in connected))
        return len(connected), failures[:5]

    connected, failures = asyncio.run(scenario())
    assert connected == clients, f"{clients - connected} refused, e.g. {failures}"


def test_common_passwords_are_refused_at_registration(base_url):
    for password in ["12345678", "password", "password1", "qwertyuiop", "11111111"]:
        response = Visitor(base_url).register(unique_email(), password)
        assert response.status_code == 422, password
        assert "most common" in response.text, password
