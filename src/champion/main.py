"""The ``champion`` command: the client-side commands of ``cli`` plus ``serve``.

This module is where the two sides meet, so that neither imports the other: ``cli.py``
talks to a server over HTTP (through the client) and ``server/`` never imports either.
"""

from __future__ import annotations

from champion.cli import main
from champion.maintenance import backup, restore
from champion.server.command import serve

main.add_command(serve)
main.add_command(backup)
main.add_command(restore)

__all__ = ["main"]

if __name__ == "__main__":
    main()
