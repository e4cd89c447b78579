"""The website through nginx: accounts, rooms, search and chat tickets over HTTP."""

import uuid

from conftest import PASSWORD, Visitor, unique_email


def test_nginx_itself_answers_its_health_path(visitor):
    response = visitor.get("/nginx-health")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_the_website_is_ready_behind_nginx(visitor):
    assert visitor.get("/readyz").status_code == 200


def test_an_anonymous_visitor_is_invited_to_register_or_log_in(visitor):
    hrefs = {href for href, _ in visitor.page("/").links}
    assert {"/register", "/login"} <= hrefs


def test_registering_signs_the_person_in(visitor):
    email = unique_email()

    response = visitor.register(email, PASSWORD)

    assert response.status_code == 303
    assert email in visitor.get("/").text


def test_a_registered_person_logs_in_again_with_the_same_password(base_url):
    email = unique_email()
    assert Visitor(base_url).register(email, PASSWORD).status_code == 303
    later = Visitor(base_url)

    response = later.login(email, PASSWORD)

    assert response.status_code == 303
    assert email in later.get("/").text


def test_a_wrong_password_is_refused(base_url):
    email = unique_email()
    Visitor(base_url).register(email, PASSWORD)
    stranger = Visitor(base_url)

    response = stranger.login(email, "not the password at all")

    assert 400 <= response.status_code < 500
    assert email not in stranger.get("/").text, "still anonymous"


def test_a_post_from_another_site_is_refused(visitor):
    response = visitor.post("/register", origin="http://evil.example", data={"email": unique_email(), "password": PASSWORD})
    assert response.status_code == 403


def test_a_forged_forwarded_host_does_not_get_past_the_origin_check(visitor):
    # nginx overwrites X-Forwarded-Host, so a client cannot make another site look like this one.
    response = visitor.post(
        "/register",
        origin="http://evil.example",
        headers={"X-Forwarded-Host": "evil.example"},
        data={"email": unique_email(), "password": PASSWORD},
    )
    assert response.status_code == 403


def test_a_created_room_is_listed_on_its_owners_home_page(member):
    title = f"My own room {uuid.uuid4().hex[:8]}"

    room_id = member.create_room(title)

    assert member.page("/").room_ids_titled(title) == [room_id]


def test_a_created_room_is_found_by_search_by_anyone(member, base_url):
    marker = uuid.uuid4().hex[:8]
    title = f"Системные тесты {marker}"
    room_id = member.create_room(title)

    found_by_owner = member.search(f"тесты {marker}").room_ids_titled(title)
    someone_else = Visitor(base_url)
    someone_else.register(unique_email(), PASSWORD)
    found_by_other = someone_else.search(marker.upper()).room_ids_titled(title)

    assert found_by_owner == [room_id]
    assert found_by_other == [room_id]


def test_a_ticket_is_issued_for_an_existing_room_with_the_session(member):
    room_id = member.create_room(f"Ticket room {uuid.uuid4().hex[:8]}")

    response = member.ticket(room_id)

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 60
    assert body["ws_path"] == "/ws"
    assert body["token"].count(".") == 2, "a JWT"


def test_no_ticket_without_a_session(member, base_url):
    room_id = member.create_room(f"Closed room {uuid.uuid4().hex[:8]}")
    anonymous = Visitor(base_url)

    response = anonymous.post(f"/api/rooms/{room_id}/ticket")

    assert response.status_code == 401


def test_no_ticket_for_a_room_that_does_not_exist(member):
    response = member.ticket("0123456789abcdef01234567")
    assert response.status_code == 404
