"""Files that came from members and outsiders (meeting papers, inbound attachments), served so
that nothing in them can run in the app's origin, whatever type they claim."""

from __future__ import annotations

from io import BytesIO

from flask import Response, send_file

# The only claimed types a file keeps: a browser shows them and runs nothing in them. Everything
# else (HTML, SVG, scripts, XML, text a browser might sniff) is bytes to save.
SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
# A downloaded file opened in the browser anyway still runs nothing and loads nothing.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def served_type(claimed: str | None) -> str:
    """The Content-Type a file is served with: its claimed type if on the safe list, else bytes."""
    base = (claimed or "").split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else "application/octet-stream"


def download(data: bytes, filename: str, claimed_type: str | None) -> Response:
    """A file as a download (Content-Disposition: attachment), never sniffed, never run."""
    response = send_file(BytesIO(data), mimetype=served_type(claimed_type), as_attachment=True,
                         download_name=filename, etag=False)
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
