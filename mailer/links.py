"""Links that leave the app (in emails, calendar files, PDFs): built from route names, against the
public address (BASE_URL), inside a request or not.

Built from the route's endpoint and values, a link follows the route: move a page to another
address and every email made afterwards links there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from werkzeug.routing import MapAdapter


def base_url() -> str:
    """The public address, without a trailing slash."""
    return current_app.config["BASE_URL"].rstrip("/")


def external_url(endpoint: str, **values) -> str:
    """The absolute public URL of `endpoint` (a full name, such as "public.preferences")."""
    return _adapter().build(endpoint, values, force_external=True)


def _adapter() -> MapAdapter:
    """A URL builder bound to BASE_URL (scheme, host and any path prefix), made once per base
    address and route map: sends build thousands of links."""
    app = current_app._get_current_object()
    base = base_url()
    cached = app.extensions.get("mailer.links")
    if cached is not None and cached[0] == base and cached[1] is app.url_map:
        return cached[2]
    parts = urlsplit(base)
    adapter = app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme or "http")
    app.extensions["mailer.links"] = (base, app.url_map, adapter)
    return adapter
