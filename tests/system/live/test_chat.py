"""The chat service through nginx's /ws: the ticket in Sec-WebSocket-Protocol, broadcast."""

import json
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from conftest import PASSWORD, Visitor, unique_email


def ws_url(base_url: str) -> str:
    return "ws" + base_url.removeprefix("http") + "/ws"


def open_chat(base_url: str, token: str, origin: str | None = None) -> ClientConnection:
    """Connects the way the chat page does: a browser cannot set headers, so the ticket rides in
    the subprotocol list."""
    return connect(
        ws_url(base_url),
        subprotocols=["chat.v1", f"bearer.{token}"],
        origin=origin or base_url,
        open_timeout=10,
        proxy=None,
    )


def next_event(connection: ClientConnection, kind: str, **fields) -> dict:
    """The next event of the given type (and fields), skipping others: presence events
    interleave with the rest, and `joined` also announces the newcomer to itself."""
    for _ in range(20):
        event = json.loads(connection.recv(timeout=10))
        if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
            return event
    raise AssertionError(f"no {kind} event with {fields}")


@pytest.fixture
def room(member) -> tuple[Visitor, str]:
    return member, member.create_room(f"Broadcast {uuid.uuid4().hex[:8]}")


def ticket(person: Visitor, room_id: str) -> str:
    response = person.ticket(room_id)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_a_ticket_opens_the_room_and_the_server_speaks_chat_v1(room, base_url):
    owner, room_id = room

    with open_chat(base_url, ticket(owner, room_id)) as chat:
        welcome = next_event(chat, "welcome")

        assert chat.subprotocol == "chat.v1"
        assert welcome["room_id"] == room_id
        assert welcome["you"] in welcome["members"]


def test_a_message_reaches_everyone_in_the_room_sender_included(room, base_url):
    owner, room_id = room
    guest = Visitor(base_url)
    guest_email = unique_email()
    guest.register(guest_email, PASSWORD)

    with open_chat(base_url, ticket(owner, room_id)) as first, open_chat(base_url, ticket(guest, room_id)) as second:
        next_event(first, "welcome")
        next_event(second, "welcome")
        joined = next_event(first, "joined", user=guest_email)
        assert joined["online"] == 2

        second.send(json.dumps({"type": "message", "text": "Привет через nginx"}))

        for connection in (first, second):
            message = next_event(connection, "message")
            assert message["user"] == guest_email
            assert message["text"] == "Привет через nginx"


def test_a_handshake_without_a_valid_ticket_is_refused_with_401(base_url):
    with pytest.raises(InvalidStatus) as refused:
        open_chat(base_url, "not-a-jwt")
    assert refused.value.response.status_code == 401


def test_a_handshake_from_a_foreign_origin_is_refused_with_403(room, base_url):
    owner, room_id = room
    with pytest.raises(InvalidStatus) as refused:
        open_chat(base_url, ticket(owner, room_id), origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_a_non_browser_client_may_send_the_ticket_in_authorization(room, base_url):
    owner, room_id = room
    token = ticket(owner, room_id)

    with connect(ws_url(base_url), additional_headers={"Authorization": f"Bearer {token}"}, proxy=None) as chat:
        assert next_event(chat, "welcome")["room_id"] == room_id


def test_a_plain_http_get_of_ws_is_answered_426_by_the_chat_not_502(visitor):
    """A browser tab or a curl that opens /ws as a page reaches the chat service, which answers
    that it speaks WebSocket only; nginx passes that on instead of failing with 502."""
    response = visitor.get("/ws")

    assert response.status_code == 426, response.text
    assert response.headers["Upgrade"].lower() == "websocket"
    assert "WebSocket only" in response.text


def delete_room(owner: Visitor, room_id: str) -> None:
    response = owner.post(f"/rooms/{room_id}/delete", data={"csrf_token": owner.csrf_token()})
    assert response.status_code == 303, response.text[:500]


def told_of_deletion(connection: ClientConnection, room_id: str) -> int:
    """Reads up to the `room_deleted` event (within the contract's 2 s) and returns the close code
    that follows it."""
    deadline = time.monotonic() + 2
    while True:
        event = json.loads(connection.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if event["type"] == "room_deleted":
            assert event["room_id"] == room_id
            break
    with pytest.raises(ConnectionClosed) as closed:
        connection.recv(timeout=5)
    return closed.value.rcvd.code


def test_a_room_its_owner_deletes_closes_everyone_inside_with_room_deleted_and_4004(room, base_url):
    owner, room_id = room
    guest = Visitor(base_url)
    guest.register(unique_email(), PASSWORD)

    with open_chat(base_url, ticket(guest, room_id)) as inside:
        next_event(inside, "welcome")
        delete_room(owner, room_id)
        assert told_of_deletion(inside, room_id) == 4004

    # The page's next step, a new ticket, says the room is gone.
    assert guest.ticket(room_id).status_code == 404
