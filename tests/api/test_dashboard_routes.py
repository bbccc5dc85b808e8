"""The dashboard's files as the API plugin serves them: at ``/`` and ``/dashboard``, from
the package, public like ``/health`` (the page signs in itself), with a policy that keeps
the page to this server, and nothing in them that reaches the internet."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from apitools import API_KEY, assert_error, server_factory

from arbotd_api.routes.dashboard import DASHBOARD_FILES

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "plugins" / "arbotd_api" / "dashboard"
# An XML namespace names, it loads nothing.
_URL = re.compile(r"\b(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.I)


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def test_the_page_and_its_files_are_served_with_a_same_origin_policy(serve_api):
    async with serve_api() as api, api.client() as client:
        pages = [await client.get(path) for path in ("/", "/dashboard", "/dashboard/")]
        for page in pages:
            assert page.status_code == 200, page.text
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.text == pages[0].text
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy
            assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/dashboard/app.js">' in pages[0].text

        module = await client.get("/dashboard/app.js")
        assert module.status_code == 200
        assert module.headers["content-type"] == "text/javascript; charset=utf-8"
        assert module.content == (FOLDER / "app.js").read_bytes()
        style = await client.get("/dashboard/style.css")
        assert style.headers["content-type"] == "text/css; charset=utf-8"


async def test_unknown_names_and_paths_are_not_found(serve_api):
    async with serve_api() as api, api.client() as client:
        for path in ("/dashboard/nothing.js", "/dashboard/..%2Fplugin.py",
                     "/dashboard/../routes/dashboard.py", "/dashboard/%2e%2e/app.py"):
            response = await client.get(path)
            assert response.status_code == 404, (path, response.text)
            if response.headers["content-type"] == "application/json":
                assert_error(response, 404, "NOT_FOUND")


async def test_with_auth_required_the_page_is_public_and_the_data_is_not(serve_api):
    async with serve_api("auth_required = true\n") as api, api.client() as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/dashboard/api.js")).status_code == 200
        assert_error(await client.get("/api/v1/status"), 401, "UNAUTHORIZED")
        status = await client.get("/api/v1/status", headers={"X-API-Key": API_KEY})
        assert status.status_code == 200


def test_every_file_ships_and_none_loads_anything_from_elsewhere() -> None:
    names = sorted(path.name for path in FOLDER.iterdir() if path.is_file())
    assert sorted(DASHBOARD_FILES) == names
    assert {"index.html", "app.js", "style.css"} <= set(names)
    # The package data pattern covers the folder (flat: no subfolders to miss).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "dashboard/*" in project["tool"]["setuptools"]["package-data"]["arbotd_api"]
    assert not [path for path in FOLDER.iterdir() if path.is_dir()]
    for name in names:
        text = (FOLDER / name).read_text(encoding="utf-8")
        assert not _URL.search(text), f"{name} names another origin: {_URL.search(text)[0]}"
        # Modules import one another by relative path, served from the same folder.
        for imported in re.findall(r'from "([^"]+)"', text):
            assert imported.startswith("./") and imported[2:] in names, (name, imported)
