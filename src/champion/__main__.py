"""``python -m champion``: the ``champion`` command."""

from champion.main import main

main()
