"""The dashboard's vendored front-end files are exactly the pinned ones, with their licences."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import champion.server.ui as ui

UI = Path(ui.__file__).resolve().parent
VENDOR = UI / "static" / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())


def test_every_vendored_file_matches_its_pinned_sha256():
    for lib in MANIFEST["libraries"]:
        for name, entry in lib["files"].items():
            digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
            assert digest == entry["sha256"], f"{name} is not the pinned {lib['name']}"


def test_every_file_in_vendor_is_in_the_manifest_and_carries_its_version():
    listed = {name for lib in MANIFEST["libraries"] for name in lib["files"]}
    present = {p.name for p in VENDOR.iterdir() if p.name != "manifest.json"}
    assert present == listed
    for lib in MANIFEST["libraries"]:
        assert lib["version"] and lib["license"] and lib["integrity"].startswith("sha512-")
        assert all(lib["version"] in name for name in lib["files"])
        assert any("LICENSE" in name for name in lib["files"]), f"{lib['name']} has no licence"


def test_pages_load_only_vendored_libraries_from_this_server():
    base = (UI / "templates" / "base.html").read_text()
    for lib in MANIFEST["libraries"]:
        for name in lib["files"]:
            if name.endswith((".js", ".css")):
                assert f"/ui/static/vendor/{name}" in base
    assert "http://" not in base and "https://" not in base, "no CDN: the page works offline"


def test_package_data_ships_the_templates_and_static_files():
    text = (UI.parents[3] / "pyproject.toml").read_text()
    for pattern in ("server/ui/templates/*.html", "server/ui/static/js/*.js",
                    "server/ui/static/vendor/*", "server/ui/static/*.css"):
        assert pattern in text
