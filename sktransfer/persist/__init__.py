"""Save and load fitted estimators without pickle: ``sktransfer.save`` / ``load``.

The file (``.skt`` by convention) is a zip archive holding

``manifest.json``
    the format name and version, the sktransfer / torch / skops versions that
    wrote it, the SHA-256 of every other member, one entry per network and the
    caller's ``metadata``;
``estimator.skops``
    the scikit-learn object tree (Pipeline, ColumnTransformer, GridSearchCV,
    sktransfer estimators...) written by ``skops.io``, each network taken out
    and replaced by a reference (the attribute ``_sktransfer_network``);
``networks/<i>/...``
    network ``i``: ``weights.safetensors``, ``history.json`` (fine-tuned
    estimators) and ``encoder/`` (text: the transformers config and tokenizer
    files).

Loading runs no code from the file. ``skops.io`` builds only trusted types:
its own defaults (scikit-learn estimators, numpy, builtins) plus the list in
``trusted_types()`` -- the classes sktransfer exports and a few data-only
scikit-learn helpers (CV splitters, scorers) -- never ``trusted=True``, and
never a list read from the file. Weights are plain tensors (safetensors). Each
network is rebuilt from its architecture name with random weights (nothing is
downloaded) and the saved weights are loaded strictly; text encoders from the
archive's config (no ``auto_map`` remote code) and tokenizer files. A network
fitted on CUDA loads on the CPU when CUDA is absent.

The archive itself (writing, validating, reading members) lives in
``sktransfer.persist._archive``, the size limits in ``_limits``, networks as
files and the checks every loaded object gets in ``_nets``.

Extension point
---------------
persist knows no estimator family by name. A family whose estimators hold a
network registers a ``sktransfer.persist.hooks.Hook`` when its package is
imported (``sktransfer/finetune/_persist.py``, ``fewshot/_persist.py``,
``_embedding/files.py``): what it stores, how it rebuilds it, what it
bounds. The trusted classes are found by one rule: every scikit-learn
estimator exported (``__all__``) by a public sktransfer module, under its
own name and the names it is exported as (a class that moved keeps loading
under its old module's name). A new estimator on an existing base needs no
change here; a new kind of network adds a hook.
"""

from __future__ import annotations

import functools
import json
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator

from sktransfer.exceptions import (
    ModelFileError,
    ParameterError,
    ParameterTypeError,
    UnsafeModelFileError,
)
from sktransfer.persist._archive import (
    FORMAT,
    TREE,
    VERSION,
    Archive,
    sha256,
    write_archive,
)

if TYPE_CHECKING:  # names used in annotations only
    import os

__all__ = ["load", "read_metadata", "save", "trusted_types"]

REFERENCE = "_sktransfer_network"
# Data-only types that skops.io reports as untrusted for an allow-list of common
# scikit-learn models (trees, forests, boosting, neighbours, MLP) and searches;
# tests/test_persist.py::test_common_sklearn_models_load checks it is complete.
_HELPERS = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._scorer._MultimetricScorer",
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.metrics._scorer._Scorer",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
    "torch.device",
)


# --- save ------------------------------------------------------------------------

def save(
    estimator: BaseEstimator,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping | None = None,
) -> None:
    """Write a fitted estimator to ``path`` with no pickle in the file.

    Parameters
    ----------
    estimator : estimator
        Any sktransfer estimator, or a scikit-learn object tree (Pipeline,
        ColumnTransformer, GridSearchCV...) holding them.
    path : str or path
        The archive to write (``.skt`` by convention). It is written to a
        temporary file first, so a failed save leaves no half-written file.
    metadata : mapping, default=None
        JSON-serialisable data stored in the manifest (``read_metadata``).

    See Also
    --------
    load : read it back.
    """
    from sktransfer.persist.hooks import network_hook

    path = Path(path)
    objects = list(_estimators(estimator))
    _check_no_stray_network(objects)
    holders = [(obj, h) for obj in objects if (h := network_hook(obj)) is not None]
    with tempfile.TemporaryDirectory(prefix="sktransfer-save-") as tmp:
        members: dict[str, Path] = {}
        networks = []
        for index, (obj, hook) in enumerate(holders):
            folder = Path(tmp, "networks", str(index))
            folder.mkdir(parents=True)
            entry = hook.save(obj, folder)
            networks.append({"kind": hook.kind, "owner": type(obj).__name__,
                             **entry})
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    members[file.relative_to(tmp).as_posix()] = file
        with _references(holders):
            tree = _dumps(estimator)
        _warn_untrusted(tree, path)
        Path(tmp, TREE).write_bytes(tree)
        members[TREE] = Path(tmp, TREE)
        manifest = _manifest(networks, members, metadata)
        write_archive(path, manifest, members)


def _dumps(estimator) -> bytes:
    import skops.io as sio

    return sio.dumps(estimator)


def _warn_untrusted(tree: bytes, path: Path) -> None:
    import skops.io as sio

    allowed = set(trusted_types())
    untrusted = sorted(set(sio.get_untrusted_types(data=tree)) - allowed)
    if untrusted:
        warnings.warn(f"{str(path)!r} holds types that sktransfer.load does not "
                      f"trust by default: {untrusted}; load it with "
                      f"sktransfer.load(path, trusted=[...])", UserWarning,
                      stacklevel=3)


@contextmanager
def _references(holders):
    """Take each network out of its owner, leaving its index, for the dump."""
    taken = []
    try:
        for index, (obj, hook) in enumerate(holders):
            heavy = {a: obj.__dict__.pop(a) for a in hook.heavy if a in obj.__dict__}
            taken.append((obj, heavy))
            obj.__dict__[REFERENCE] = index
        yield
    finally:
        for obj, heavy in taken:
            obj.__dict__.pop(REFERENCE, None)
            obj.__dict__.update(heavy)


def _manifest(networks, members, metadata) -> dict:
    import skops
    import torch

    from sktransfer import __version__

    try:
        metadata = json.loads(json.dumps(dict(metadata or {})))
    except TypeError as exc:
        raise ParameterTypeError(f"metadata must be JSON-serialisable: {exc}") from None
    return {
        "format": FORMAT, "version": VERSION,
        "versions": {"sktransfer": __version__, "torch": torch.__version__,
                     "skops": skops.__version__},
        "members": {name: sha256(file) for name, file in members.items()},
        "networks": networks,
        "metadata": metadata,
    }


# --- the estimator tree ------------------------------------------------------------

def _estimators(obj, seen=None) -> Iterator:
    """Every estimator (and other scikit-learn / sktransfer object) in the tree
    under ``obj``, once, parents first. Networks (a hook's ``heavy``
    attributes) are not walked into."""
    seen = set() if seen is None else seen
    if obj is None or isinstance(obj, (str, bytes, int, float)) or id(obj) in seen:
        return
    seen.add(id(obj))
    if _is_object(obj):
        yield obj
        children: Iterable = [v for _, v in _attributes(obj)]
    elif isinstance(obj, Mapping):
        children = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = obj
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        children = obj.ravel().tolist()
    else:
        if _is_network(obj):
            yield obj  # save refuses it: it would need pickle
        return
    for child in children:
        yield from _estimators(child, seen)


def _is_network(obj) -> bool:
    import torch
    from skorch import NeuralNet

    return isinstance(obj, (torch.nn.Module, NeuralNet))


def _is_object(obj) -> bool:
    package = type(obj).__module__.partition(".")[0]
    return isinstance(obj, BaseEstimator) or (
        package in ("sklearn", "sktransfer") and hasattr(obj, "__dict__")
        and not isinstance(obj, type) and not callable(obj))


def _attributes(obj) -> list:
    """``(name, value)`` of what is saved of ``obj`` (its ``__getstate__``, as
    skops sees it), its networks left out."""
    from sktransfer.persist.hooks import network_hook

    if _is_network(obj):
        return []
    hook = network_hook(obj)
    skip = hook.heavy if hook else ()
    state = obj.__getstate__()
    state = state if isinstance(state, dict) else vars(obj)
    return [(k, v) for k, v in state.items() if k not in skip]


def _check_no_stray_network(objects) -> None:
    """A network outside a hook would end up pickled inside the file."""
    why = ("sktransfer.save stores a network only as the fitted state of a "
           "sktransfer estimator with a model name (rebuilding any other means "
           "running its code); use pickle/joblib for it")
    for obj in objects:
        if _is_network(obj):
            raise ModelFileError(f"the estimator holds a {type(obj).__name__}: {why}")
        for name, value in _attributes(obj):
            if _is_network(value):
                raise ModelFileError(f"{type(obj).__name__}.{name} is a "
                                     f"{type(value).__name__}: {why}")


# --- load --------------------------------------------------------------------------

def load(
    path: str | os.PathLike[str],
    *,
    trusted: Iterable[str] = (),
    max_parameters: int | None = None,
    max_image_size: int | None = None,
) -> BaseEstimator:
    """Read an estimator written by :func:`save`, running no code from the file.

    The file is data: nothing in it becomes a path or a registry key (a
    loaded embedder caches in memory, under a key made of the digest of its
    actual weights), and every size in it is checked before anything is
    allocated (``sktransfer.persist._limits``).

    Parameters
    ----------
    path : str or path
        An archive written by ``save`` (or ``sktransfer fit``).
    trusted : iterable of str, default=()
        Extra type names (``"module.Class"``) you vouch for, added to
        ``trusted_types()``: e.g. your own transformer inside a Pipeline.
    max_parameters : int, default=None
        The largest network (in parameters) the file may build; None: the
        default limit (1e9). Raise it for a larger network you trust.
    max_image_size : int, default=None
        The largest image side (pixels) the file may ask for (an image
        network's input size, a fine-tuner's ``image_size``); None: the
        default limit (2048).

    Returns
    -------
    estimator
        Fitted, ready to predict or transform; on the CPU when the file was
        written on a CUDA machine and this one has no CUDA.

    Raises
    ------
    UnsafeModelFileError
        The file is a pickle, or holds types that are not trusted.
    ModelFileError
        The file is not a sktransfer archive, or it is damaged, modified, or
        over a size limit.
    """
    from sktransfer.persist import _limits as limits

    changes = {}
    for key, value in (("max_parameters", max_parameters),
                       ("max_image_size", max_image_size)):
        if value is not None:
            if type(value) is not int or value < 1:
                raise ParameterError(f"{key} must be a positive int, got "
                                     f"{value!r}")
            changes[key] = value
    from sktransfer.backbones import names_only

    # every network the file names (not stores) is resolved by name only:
    # never a file or folder of that name, here or anywhere
    with limits.using(**changes), names_only():  # this call only, as the limits
        return _load(Path(path), trusted)


def _load(path: Path, trusted) -> BaseEstimator:
    from sktransfer.persist import _limits as limits
    from sktransfer.persist._nets import check_chains, check_loaded
    from sktransfer.persist.hooks import hooks

    with Archive(path) as archive:
        tree = archive.read(TREE)
        limits.check_tree(tree, archive.size, repr(str(path)))
        estimator = _loads(tree, path, trusted)  # imports every family: hooks
        registered = hooks()
        kinds = {h.kind: h for h in registered if h.kind is not None}
        objects = list(_estimators(estimator))
        limits.check_data_only(objects, path)
        owners = _owners(estimator, len(archive.networks), path)
        stored = {id(obj) for _, obj in owners}
        _map_devices(estimator)
        check_loaded(objects, path, registered, stored)
        with tempfile.TemporaryDirectory(prefix="sktransfer-load-") as tmp:
            for index, obj in owners:
                entry = archive.networks[index]
                hook = kinds.get(entry.get("kind"))
                if hook is None:
                    raise ModelFileError(f"{str(path)!r}: network {index} is of an "
                                         f"unknown kind {entry.get('kind')!r}")
                prefix = f"networks/{index}/"
                folder = archive.extract(prefix, Path(tmp, str(index)))
                try:
                    hook.load(obj, folder, entry)
                except limits.REBUILD_ERRORS as exc:  # what torch/transformers raise
                    raise ModelFileError(f"{str(path)!r}: network {index} "
                                         f"({entry.get('owner')}) cannot be rebuilt: "
                                         f"{exc}") from exc
                obj.__dict__["_weights_digest"] = archive.digests.get(
                    prefix + "weights.safetensors")
    for obj in objects:
        for hook in registered:
            hook.finish(obj, repr(str(path)), id(obj) in stored)
    check_chains(objects, path)
    return estimator


def read_metadata(path: str | os.PathLike[str]) -> dict:
    """The ``metadata`` given to :func:`save` (validated like ``load`` does).

    Parameters
    ----------
    path : str or path

    Returns
    -------
    dict
    """
    with Archive(Path(path)) as archive:
        return dict(archive.manifest.get("metadata") or {})


def trusted_types(extra: Iterable[str] = ()) -> list[str]:
    """The types ``load`` builds besides skops' defaults: a fixed allow-list.

    The scikit-learn estimators exported (``__all__``) by a public sktransfer
    module (data and parameters only: their networks are stored apart),
    under their own name and every public name they are exported as;
    scikit-learn's CV splitters, scorer wrappers and the metric functions of
    its named scorers (``scoring="accuracy"``: skops stores a function as its
    name and imports it, never calls it), the data-only types inside common
    scikit-learn models (trees, neighbour indexes, MLP optimisers),
    ``torch.device``, and ``extra``.

    Parameters
    ----------
    extra : iterable of str, default=()

    Returns
    -------
    list of str
    """
    import inspect

    import sklearn.model_selection as ms

    names = {*_HELPERS, *_scorer_functions(), *_public_estimators(),
             *map(str, extra)}
    for name in ms.__all__:
        if "Halving" in name:  # experimental: importing it needs a flag
            continue
        obj = getattr(ms, name)
        if inspect.isclass(obj) and issubclass(
                obj, (ms.BaseCrossValidator, ms.BaseShuffleSplit)):
            names.add(f"{obj.__module__}.{obj.__qualname__}")
    return sorted(names)


@functools.cache
def _public_estimators() -> frozenset[str]:
    """Every estimator class a public sktransfer module exports, by its own
    name and by each public name it is exported as. Importing the modules
    registers every family's save/load hook. The command line (a layer above
    the library) and ``__main__`` modules are not imported."""
    import importlib
    import inspect
    import pkgutil

    from skorch import NeuralNet

    import sktransfer

    modules = ["sktransfer"] + [
        info.name for info in pkgutil.walk_packages(sktransfer.__path__,
                                                    "sktransfer.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and not info.name.startswith("sktransfer.cli")]
    names = set()
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional extra that is not installed
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (inspect.isclass(obj) and issubclass(obj, BaseEstimator)
                    and not issubclass(obj, NeuralNet)):
                names.add(f"{obj.__module__}.{obj.__qualname__}")
                names.add(f"{module_name}.{name}")
    return frozenset(names)


@functools.cache
def _scorer_functions() -> frozenset[str]:
    from sklearn.metrics import get_scorer, get_scorer_names

    functions = (getattr(get_scorer(name), "_score_func", None)
                 for name in get_scorer_names())
    return frozenset(f"{f.__module__}.{f.__qualname__}" for f in functions
                     if callable(f))


def _loads(data: bytes, path: Path, trusted):
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    allowed = trusted_types(trusted)
    try:
        return sio.loads(data, trusted=allowed)
    except UntrustedTypesFoundException as exc:
        untrusted = sorted(sio.get_untrusted_types(data=data))
        untrusted = [t for t in untrusted if t not in allowed]
        raise UnsafeModelFileError(
            f"{str(path)!r} holds types sktransfer.load does not trust: "
            f"{untrusted or exc}; if you wrote it and trust them, pass "
            f"sktransfer.load(path, trusted=[...])") from None
    except Exception as exc:  # skops parsing an invalid tree: a bad file, no bug
        raise ModelFileError(f"{str(path)!r}: its {TREE} cannot be read "
                             f"({type(exc).__name__}: {exc})") from exc


def _owners(estimator, n_networks: int, path: Path) -> list:
    owners = []
    for obj in _estimators(estimator):
        index = obj.__dict__.pop(REFERENCE, None)
        if index is not None:
            if not isinstance(index, int) or isinstance(index, bool):
                raise ModelFileError(f"{str(path)!r}: a network reference is "
                                     f"{index!r}, not an index")
            owners.append((index, obj))
    indices = sorted(index for index, _ in owners)
    if indices != list(range(n_networks)):
        raise ModelFileError(f"{str(path)!r}: the estimator refers to networks "
                             f"{indices}, the manifest lists {n_networks}")
    return owners


def _map_devices(estimator) -> None:
    """``device_`` CUDA -> CPU on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    for obj in _estimators(estimator):
        if str(obj.__dict__.get("device_", "")).startswith("cuda"):
            obj.device_ = "cpu"
