"""Two versions compared: source lines, pinned packages, captured values and files."""

from __future__ import annotations

from champion.server.ui.diff import versions


def version(n, source, packages=None, values=None, files=None, python="3.11.7"):
    return {"version": n, "source": source, "packages": packages or {}, "values": values or {},
            "files": files or {}, "python_version": python}


def test_the_source_diff_marks_added_removed_and_hunk_lines():
    a = version(1, "def f(x):\n    return x + 1\n")
    b = version(2, "def f(x):\n    # better\n    return x + 2\n")
    d = versions("f", a, b)
    kinds = [line.kind for line in d.source]
    assert kinds[0] == "hunk" and "add" in kinds and "del" in kinds
    assert any(line.text == "+    return x + 2" for line in d.source)
    assert not d.identical and not d.truncated


def test_packages_values_files_and_python_that_differ_are_listed():
    a = version(1, "x", {"numpy": "1.26.0", "scipy": "1.11.0"},
                {"model": {"sha256": "aa", "type": "LogisticRegression"},
                 "t": {"sha256": "bb", "type": "float"}}, {"util.py": "cc"})
    b = version(2, "x", {"numpy": "2.0.0", "scipy": "1.11.0", "pandas": "2.2.0"},
                {"model": {"sha256": "dd", "type": "GradientBoostingClassifier"},
                 "t": {"sha256": "bb", "type": "float"}}, {}, python="3.12.1")
    d = versions("f", a, b)
    assert d.source == []
    assert d.packages == [("numpy", "1.26.0", "2.0.0"), ("pandas", None, "2.2.0")]
    assert d.artifacts == [("value", "model", "LogisticRegression",
                            "GradientBoostingClassifier"), ("file", "util.py", "file", None)]
    assert d.python == ("3.11.7", "3.12.1")


def test_the_same_version_twice_is_identical():
    a = version(1, "def f(): pass", {"numpy": "1"}, {"m": {"sha256": "a", "type": "int"}})
    assert versions("f", a, dict(a, version=2)).identical
