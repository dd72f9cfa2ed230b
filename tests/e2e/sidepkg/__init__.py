"""A package whose import is seen: it appends the importing process's pid to the file named
by CHAMPION_TEST_IMPORT_MARKER (a deploy must never make the server itself import it)."""

import os

_marker = os.environ.get("CHAMPION_TEST_IMPORT_MARKER")
if _marker:
    with open(_marker, "a") as f:
        f.write(f"{os.getpid()}\n")
