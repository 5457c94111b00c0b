"""Shared numpydoc text, written once: :func:`fill_doc`.

A docstring names a shared fragment on a line of its own, ``%(name)s``; the
fragment (a plain string, written at no indentation) replaces that line,
indented as the line was. Nothing else in the docstring is touched, so braces
and ``%`` elsewhere stay as written.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TypeVar

__all__ = ["fill_doc"]

T = TypeVar("T")


def fill_doc(**fragments: str) -> Callable[[T], T]:
    """Decorator: put ``fragments`` into the docstring of a class or function.

    Apply it outermost (above ``_fit_context`` and the like), so that it fills
    the docstring the wrapper exposes. An unknown name is a ``KeyError`` at
    import, never a docstring left half-filled.
    """

    def decorate(obj: T) -> T:
        lines = []
        for line in (obj.__doc__ or "").splitlines():
            name = line.strip()
            if not (name.startswith("%(") and name.endswith(")s")):
                lines.append(line)
                continue
            indent = line[: len(line) - len(line.lstrip())]
            text = textwrap.dedent(fragments[name[2:-2]]).strip("\n")
            lines.extend(indent + part if part else "" for part in text.splitlines())
        obj.__doc__ = "\n".join(lines)
        return obj

    return decorate
