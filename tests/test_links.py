"""Links in emails are built from route names: move a route and the next email links to its new address."""

from __future__ import annotations

import re

from werkzeug.routing import Map, Rule

from mailer.compose import drafts
from mailer.db import session
from mailer.links import external_url
from mailer.compose.message import CampaignMessages


def _links(data: bytes) -> set[str]:
    return set(re.findall(rb"https://mailer\.example\.org/[^\s\"<>=]+", data.replace(b"=\r\n", b"")))


def test_a_moved_route_moves_the_link_in_the_email(app, client, make_officer, make_member):
    app.config["BASE_URL"] = "https://mailer.example.org"
    campaign = drafts.create(make_officer(), starter_slug="weekly-bulletin")
    session.commit()
    member = make_member(first_name="Dora", email="dora@example.org")
    before = _links(CampaignMessages(campaign).build(member, 1).data)
    assert any(link.startswith(b"https://mailer.example.org/u/") for link in before), before

    # The same endpoint at another address (its name, and so every caller, unchanged).
    app.url_map = Map([Rule(r.rule.replace("/u/", "/unsubscribe/", 1), **r.get_empty_kwargs())
                       for r in app.url_map.iter_rules()], converters=app.url_map.converters)
    after = _links(CampaignMessages(campaign).build(member, 1).data)
    moved = [link for link in after if link.startswith(b"https://mailer.example.org/unsubscribe/")]
    assert moved and not any(link.startswith(b"https://mailer.example.org/u/") for link in after), after
    path = moved[0].decode().removeprefix("https://mailer.example.org")
    assert client.get(path).status_code == 200  # the link reaches the page at its new address


def test_links_keep_the_public_address_and_its_path_outside_a_request(app):
    app.config["BASE_URL"] = "https://example.org/mailer/"
    assert external_url("public.preferences", token="abc") == "https://example.org/mailer/u/abc"
    assert external_url("auth.reset_password", token="t") == "https://example.org/mailer/reset/t"
    app.config["BASE_URL"] = "http://127.0.0.1:5000"
    assert external_url("public.web_version", web_token="w") == "http://127.0.0.1:5000/w/w"
