"""What a pickle refers to, read without running it (pickletools, no unpickling)."""

from __future__ import annotations

import pickletools

__all__ = ["modules_in_pickle"]


def modules_in_pickle(data: bytes) -> set[str]:
    """Module names a pickle refers to (GLOBAL / STACK_GLOBAL opcodes)."""
    found: set[str] = set()
    stack: list[object] = []
    memo: dict[int, object] = {}
    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name == "GLOBAL" and isinstance(arg, str):
            found.add(arg.split(" ", 1)[0])
            stack.append(None)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            stack.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT") and isinstance(arg, int):
            memo[arg] = stack[-1] if stack else None
        elif name in ("BINGET", "LONG_BINGET", "GET") and isinstance(arg, int):
            stack.append(memo.get(arg))
        elif name == "STACK_GLOBAL":
            if len(stack) >= 2 and isinstance(stack[-2], str):
                found.add(stack[-2])
            stack.append(None)
        else:
            stack.append(None)
        if len(stack) > 64:
            del stack[:-8]
    return found
