"""Capture, in-process: what a version artifact holds, and that it rebuilds the function."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from champion.capture import capture
from champion.errors import DeployError
from champion.runtime.loader import load_function
from champion.runtime.pickles import modules_in_pickle
from champion.store.artifacts import sha256


@pytest.fixture(autouse=True)
def _cwd_and_path_restored(monkeypatch):
    """``rebuild`` loads a version in this process as a worker would: into the version's own
    directory, made the working directory and put on ``sys.path``. Undone after each test: a
    later test's deploy captures the files under the working directory, and from a temporary
    one it took this checkout's ``tests`` package for an installed one ("the function needs
    package 'tests'")."""
    monkeypatch.chdir(Path.cwd())
    monkeypatch.setattr(sys, "path", list(sys.path))


FACTOR = 3


def scale(v):
    return np.asarray(v) * FACTOR


def uses_helper(v):
    return float(scale(v).sum())


def rebuild(cap):
    blobs = {}
    values = {}
    for k, data in cap.values.items():
        values[k] = sha256(data)
        blobs[values[k]] = data
    files = {}
    for path, data in cap.files.items():
        files[path] = sha256(data)
        blobs[files[path]] = data
    fp = None
    if cap.function_pickle:
        fp = sha256(cap.function_pickle)
        blobs[fp] = cap.function_pickle
    manifest = {"function_name": cap.function_name, "imports": cap.imports,
                "helpers": cap.helpers, "values": values, "files": files,
                "function_pickle": fp}
    return load_function(manifest, blobs.__getitem__)


def test_helpers_travel_as_source_and_values_as_pickles():
    cap = capture(uses_helper)
    assert "def scale(v):" in cap.source and "def uses_helper(v):" in cap.source
    assert "import numpy as np" in cap.imports
    assert set(cap.values) == {"FACTOR"}
    assert "FACTOR = 3" in cap.source
    assert cap.function_pickle is None
    assert "numpy" in cap.packages and cap.packages["numpy"] == np.__version__
    assert rebuild(cap)([1, 2]) == 9.0


def test_models_are_pickled_and_pinned():
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])

    def predict(x):
        return float(model.predict([[x]])[0])

    cap = capture(predict)
    # A closure: the function is pickled by value too, and still works.
    assert cap.function_pickle is not None
    assert "scikit-learn" in cap.packages
    assert rebuild(cap)(3.0) == pytest.approx(6.0)


def test_unpicklable_global_is_named():
    lock = threading.Lock()
    ns = {"lock": lock}
    exec("def f(x):\n    with lock:\n        return x\n", ns)
    f = ns["f"]
    f.__module__ = "__main__"
    with pytest.raises(DeployError, match="'lock'") as info:
        capture(f)
    assert info.value.detail["value"] == "lock"


def test_local_module_files_are_shipped(tmp_path, monkeypatch):
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "features_xyz.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "model_xyz.py").write_text(textwrap.dedent("""
        import features_xyz

        def predict(x):
            return features_xyz.double(x) + 1
    """))
    monkeypatch.syspath_prepend(str(pkg))
    import model_xyz

    try:
        cap = capture(model_xyz.predict, root=pkg)
        assert set(cap.files) == {"features_xyz.py"}
        assert "import features_xyz" in cap.imports
        del sys.modules["features_xyz"]
        sys.path.remove(str(pkg))
        assert rebuild(cap)(4) == 9
    finally:
        sys.modules.pop("model_xyz", None)
        sys.modules.pop("features_xyz", None)


def test_lambda_is_pickled_by_value():
    cap = capture(lambda x: x + 1)
    assert cap.function_pickle is not None
    assert cap.function_name == "predict"
    assert rebuild(cap)(1) == 2


def test_signature_is_recorded():
    def f(a, b=2, *, c):
        return a

    sig = capture(f).signature
    assert [(p["name"], p["kind"], p["default"]) for p in sig] == [
        ("a", "POSITIONAL_OR_KEYWORD", False),
        ("b", "POSITIONAL_OR_KEYWORD", True),
        ("c", "KEYWORD_ONLY", False),
    ]


def test_non_function_is_refused():
    with pytest.raises(DeployError, match="not a function"):
        capture(42)  # type: ignore[arg-type]


def test_python_packages_are_added_to_the_pins():
    cap = capture(uses_helper, python_packages=["pandas==2.2.0"])
    assert cap.packages["pandas"] == "2.2.0"


def test_modules_in_pickle_finds_classes_modules():
    from sklearn.linear_model import LogisticRegression

    data = cloudpickle.dumps(LogisticRegression())
    assert any(m.startswith("sklearn") for m in modules_in_pickle(data))


def test_extra_files_are_included(tmp_path):
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    cap = capture(uses_helper, extra_files=["vocab.txt"], root=tmp_path)
    assert cap.files["vocab.txt"] == b"a\nb\n"
    assert Path("vocab.txt").name in cap.files
