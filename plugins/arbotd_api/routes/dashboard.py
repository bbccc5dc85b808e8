"""The dashboard: a page at ``/`` and ``/dashboard``, its files at ``/dashboard/<name>``.

The files ship inside the package (``arbotd_api/dashboard/``: HTML, ES modules, CSS), so
the page works offline, loads nothing from the internet and needs no build step. They
are public like ``/health``: they hold no data and no secret, and the page itself signs
in through ``/api/v1/auth/login`` when authentication is on, then speaks only the public
REST and WebSocket API with the rights of whoever signed in.

Only the files present when the server starts are served, by exact name, so no path a
client sends ever reaches the filesystem. The Content-Security-Policy lets the page load
and connect to this server only: no inline script, no other origin, no framing.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from quart import Blueprint, Response

from arbotd_api.context import kind
from arbotd_api.errors import ApiError

__all__ = ["DASHBOARD_FILES", "blueprint"]

blueprint = Blueprint("dashboard", __name__)

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_SECURITY_HEADERS = {
    # 'self' covers ws:// and wss:// to the same host and port (CSP Level 3).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load, so that an upgraded daemon's page is never mixed with
    # an old cached module.
    "Cache-Control": "no-cache",
}


def _load_files() -> dict[str, tuple[bytes, str]]:
    """Every file of the dashboard directory: name -> (content, content type)."""
    folder = resources.files("arbotd_api") / "dashboard"
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return files


DASHBOARD_FILES: dict[str, tuple[bytes, str]] = _load_files()
"""The files served, read once at import: an upgrade takes effect at a restart, like
the code beside them."""


def _file_response(name: str) -> Response:
    found = DASHBOARD_FILES.get(name)
    if found is None:
        raise ApiError("NOT_FOUND", f"No dashboard file {name[:64]!r}",
                       {"available": sorted(DASHBOARD_FILES)})
    content, content_type = found
    response = Response(content, status=200, content_type=content_type)
    response.headers.update(_SECURITY_HEADERS)
    return response


@blueprint.get("/")
@blueprint.get("/dashboard")
@blueprint.get("/dashboard/")
@kind("public_read")
async def dashboard_page() -> Response:
    return _file_response("index.html")


@blueprint.get("/dashboard/<name>")
@kind("public_read")
async def dashboard_file(name: str) -> Any:
    return _file_response(name)
