"""What an estimator family tells ``sktransfer.save`` / ``load``, and the tools
it may use.

``sktransfer.persist`` owns the format (the archive, its manifest and
members), the limits and the checks every loaded object gets; it knows no
estimator family by name. A family whose estimators hold a network (or
fitted state worth checking at load) registers a :class:`Hook` when its
package is imported: what it stores, how it rebuilds it, what it bounds.

A hook with a ``kind`` stores a network: ``matches(obj)`` says that the
fitted ``obj`` holds one, ``save(obj, folder)`` writes it into ``folder``
(only the files of ``sktransfer.persist.hooks.NETWORK_FILES``) and returns a
JSON-serialisable entry for the manifest, ``load(obj, folder, entry)``
rebuilds it, every size checked with the tools below before anything is
allocated. ``heavy`` names the attributes the network lives in: they are
taken out of the scikit-learn tree. ``check(obj, name, stored)`` runs on every
loaded object before any network is rebuilt, ``finish(obj, name, stored)``
after (``stored``: a network of ``obj`` is in the file; ``name`` names the
file for messages); both raise
``ModelFileError`` for a state the family's own ``fit`` could not have made,
and return quietly for objects of other families.
"""

from __future__ import annotations

from pathlib import Path

from sktransfer.exceptions import ModelFileError
from sktransfer.persist._limits import (
    check_finite,
    check_image_size,
    check_int,
    check_parameters,
    image_config,
)
from sktransfer.persist._nets import (
    ENCODER,
    HISTORY,
    NETWORK_FILES,
    WEIGHTS,
    cap,
    describe_image,
    exists_locally,
    image_backbone,
    is_local,
    is_model_name,
    is_weights_name,
    json_number,
    load_encoder,
    load_weights,
    save_encoder,
    save_weights,
    short,
)

__all__ = [
    "ENCODER", "HISTORY", "NETWORK_FILES", "WEIGHTS", "Hook", "ModelFileError",
    "cap", "check_finite", "check_image_size", "check_int", "check_parameters",
    "describe_image", "exists_locally", "hooks", "image_backbone",
    "image_config", "is_local", "is_model_name", "is_weights_name",
    "json_number", "load_encoder", "load_weights", "network_hook", "register",
    "save_encoder", "save_weights", "short",
]


class Hook:
    """A family's save/load hook (see the module docstring); the defaults
    store nothing and check nothing."""

    #: The manifest's name for the network this hook stores (None: none).
    kind: str | None = None
    #: The attributes of the owner the network lives in.
    heavy: tuple[str, ...] = ()

    def matches(self, obj) -> bool:
        """``obj`` is fitted and holds a network this hook stores."""
        return False

    def save(self, obj, folder: Path) -> dict:
        """Write the network of ``obj`` into ``folder``; the manifest entry."""
        raise NotImplementedError

    def load(self, obj, folder: Path, entry: dict) -> None:
        """Rebuild the network of ``obj`` from ``folder`` and ``entry``."""
        raise NotImplementedError

    def check(self, obj, name: str, stored: bool) -> None:
        """Refuse a loaded ``obj`` of this family whose state ``fit`` could
        not have made (before any network is rebuilt)."""

    def finish(self, obj, name: str, stored: bool) -> None:
        """The same once the networks are rebuilt."""


_HOOKS: list[Hook] = []


def register(hook: Hook) -> Hook:
    """Add ``hook`` (once per class; a network kind once)."""
    if any(type(h) is type(hook) for h in _HOOKS):
        return hook
    if hook.kind is not None and any(h.kind == hook.kind for h in _HOOKS):
        raise RuntimeError(f"two hooks store networks of kind {hook.kind!r}")
    _HOOKS.append(hook)
    return hook


def hooks() -> tuple[Hook, ...]:
    """The registered hooks."""
    return tuple(_HOOKS)


def network_hook(obj) -> Hook | None:
    """The hook that stores the network ``obj`` holds, or None."""
    return next((h for h in _HOOKS if h.kind is not None and h.matches(obj)),
                None)
