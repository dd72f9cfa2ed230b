"""A real notebook, executed headless, trains a model, deploys it and calls the endpoint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # seconds each: `pytest -m "not slow"` skips them

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def test_notebook_trains_deploys_and_calls_the_endpoint(server, unique_name, tmp_path,
                                                        monkeypatch):
    workdir = tmp_path / "nb"
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    monkeypatch.setenv("CHAMPION_URL", server.url)
    monkeypatch.setenv("CHAMPION_TOKEN", server.token)
    monkeypatch.setenv("CHAMPION_NOTEBOOK_DEPLOYMENT", unique_name)
    nb = nbformat.read(workdir / NOTEBOOK.name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    printed = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert printed.startswith("1 {'probability'") or "1 {'probability'" in printed

    # The version is served from the server, not the notebook: call it over HTTP.
    with server.http() as http:
        r = http.post(f"/v1/{unique_name}", json={"data": [3.0, 0.0, 0.0]})
    assert r.status_code == 200
    assert r.json()["data"]["churn"] is True
    with server.client() as client:
        source = client.version(unique_name, 1)["source"]
    assert "def predict_churn(features):" in source
    assert "def to_row(features):" in source  # the notebook helper travels as source
    assert "THRESHOLD = 0.5" in source
    assert os.environ["CHAMPION_URL"] == server.url
