"""The limits of ``sktransfer.load``: every size read from a model file is
checked against them before anything is allocated, extracted or built.

A model file is data. What it says about sizes (zip members, the arrays of the
scikit-learn tree, a network's parameter count, an image size) is bounded:

- members: each one, and all of them together, uncompressed, at most
  ``ratio`` times the file's size plus ``slack`` bytes, and at most
  ``max_member_bytes`` each;
- the scikit-learn tree (``estimator.skops``): at most ``max_arrays`` array
  references, each array's header consistent with its bytes, and the bytes
  that every reference reads, all together, within the same bound;
- a network: its parameter count, estimated on the meta device before it is
  built, at most ``max_parameters`` (``sktransfer.load(path,
  max_parameters=...)`` raises it) and at most the number of values its
  weights file holds;
- an image preprocessing config: sizes between ``min_image_size`` and
  ``max_image_size`` pixels, ``crop_pct`` in ``[min_crop_pct, 1]``.

Each refusal is a :class:`~sktransfer.exceptions.ModelFileError` that names
the member and the limit. ``LIMITS`` holds the defaults (tests lower them to
stay fast); ``current()`` the values in force for the load running in this
thread (``sktransfer.load(path, max_parameters=..., max_image_size=...)``
changes them for that call only, never for another thread).
``check_data_only`` keeps what a loaded object takes from the file to data
(no cache folder, no cache key, no method).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from sktransfer.exceptions import ModelFileError

__all__ = ["DEFAULT_MAX_PARAMETERS", "DERIVED", "LIMITS", "REBUILD_ERRORS",
           "Limits", "check_data_only", "check_members", "check_parameters",
           "check_tree", "current", "image_config", "read_counted", "read_json",
           "safetensors_values", "using"]

DEFAULT_MAX_PARAMETERS = 1_000_000_000


@dataclasses.dataclass
class Limits:
    """The bounds ``sktransfer.load`` holds a file to (see the module docstring)."""

    ratio: float = 3.0
    slack: int = 64 << 20
    max_member_bytes: int = 64 << 30
    max_arrays: int = 100_000
    max_json_bytes: int = 64 << 20
    max_parameters: int = DEFAULT_MAX_PARAMETERS
    min_image_size: int = 8
    max_image_size: int = 2048
    min_crop_pct: float = 0.25

    def budget(self, file_size: int) -> int:
        """Uncompressed bytes a file of ``file_size`` bytes may unpack to."""
        return min(int(self.ratio * file_size) + self.slack,
                   self.max_member_bytes * 4)


LIMITS = Limits()
_CURRENT: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "sktransfer_load_limits", default=None)


def current() -> Limits:
    """The limits of the load running in this thread (else ``LIMITS``)."""
    return _CURRENT.get() or LIMITS


@contextlib.contextmanager
def using(**changes):
    """``LIMITS`` with ``changes``, for the code inside (this thread only)."""
    token = _CURRENT.set(dataclasses.replace(LIMITS, **changes))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def read_counted(source, limit: int, what: str, sink=None) -> bytes:
    """Read a (zip member) stream in chunks, counting what it inflates to:
    more than ``limit`` bytes is a ``ModelFileError`` as soon as it is seen,
    so a member that declares a false size never inflates in one piece.
    ``sink(chunk)`` receives each chunk (then nothing is kept)."""
    parts = []
    total = 0
    while True:
        chunk = source.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise ModelFileError(f"{what} inflates to more than the {limit} bytes "
                                 f"it declares or the limits allow")
        if sink is None:
            parts.append(chunk)
        else:
            sink(chunk)
    return b"".join(parts)


def check_members(infos: list[zipfile.ZipInfo], file_size: int, name: str) -> None:
    """Each member and their sum, uncompressed, within ``current().budget``."""
    limits = current()
    budget = limits.budget(file_size)
    total = 0
    for info in infos:
        limit = min(budget, current().max_member_bytes)
        if info.file_size > limit:
            raise ModelFileError(
                f"{name}: member {info.filename!r} unpacks to {info.file_size} "
                f"bytes, over the limit of {limit} ({current().ratio:g} x the file's "
                f"{file_size} bytes + {current().slack}, at most "
                f"{current().max_member_bytes})")
        total += info.file_size
    if total > budget:
        raise ModelFileError(
            f"{name}: its members unpack to {total} bytes, over the limit of "
            f"{budget} ({current().ratio:g} x the file's {file_size} bytes + "
            f"{current().slack})")


def read_json(data: bytes, what: str):
    """``json.loads`` that turns every failure (bad UTF-8, syntax, nesting
    deep enough to exhaust the recursion limit) into a ``ModelFileError``."""
    if len(data) > current().max_json_bytes:
        raise ModelFileError(f"{what} is {len(data)} bytes, over the limit of "
                             f"{current().max_json_bytes} for a JSON member")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ModelFileError(f"{what} is not valid JSON ({reason})") from None


# --- the scikit-learn tree ------------------------------------------------------

def check_tree(data: bytes, file_size: int, name: str) -> None:
    """Count and size what ``skops.io`` would read from the tree ``data``
    (every ``"file"`` reference reads its member whole) before it reads it."""
    what = f"{name}: the tree estimator.skops"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as tree:
            infos = {info.filename: info for info in tree.infolist()}
            if "schema.json" not in infos:
                raise ModelFileError(f"{what} has no schema.json")
            check_members(list(infos.values()), file_size, what)
            for entry in infos.values():  # skops reads members whole: count first
                with tree.open(entry) as handle:
                    read_counted(handle, entry.file_size,
                                 f"{what}: member {entry.filename!r}",
                                 sink=lambda chunk: None)
            schema = read_json(tree.read("schema.json"), f"{what}'s schema.json")
            references = list(_file_references(schema))
            if len(references) > current().max_arrays:
                raise ModelFileError(
                    f"{what} refers to {len(references)} arrays, over the limit "
                    f"of {current().max_arrays}")
            total = 0
            for member in references:
                info = infos.get(member)
                if info is None:
                    raise ModelFileError(f"{what} refers to a missing member "
                                         f"{member!r}")
                if member.endswith(".npy"):
                    _check_npy_header(tree, info, what)
                total += info.file_size
            budget = current().budget(file_size)
            if total > budget:
                raise ModelFileError(
                    f"{what}: its {len(references)} array references read "
                    f"{total} bytes, over the limit of {budget} ({current().ratio:g} "
                    f"x the file's {file_size} bytes + {current().slack})")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
            RuntimeError, OSError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{what} is damaged ({type(exc).__name__}: "
                             f"{exc})") from None


def _file_references(schema) -> Iterator[str]:
    """Every ``"file"`` a node of the skops schema names (walked iteratively)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            file = node.get("file")
            if "__loader__" in node and file is not None:
                if not isinstance(file, str):
                    raise ModelFileError(f"the tree names a member {file!r}")
                yield file
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_npy_header(tree: zipfile.ZipFile, info: zipfile.ZipInfo, what: str):
    from numpy.lib import format as npy

    with tree.open(info) as handle:
        try:
            version = npy.read_magic(handle)
            read = {(1, 0): npy.read_array_header_1_0,
                    (2, 0): npy.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"npy format version {version}")
            shape, _, dtype = read(handle)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ModelFileError(f"{what}: array {info.filename!r} has an invalid "
                                 f"header ({exc})") from None
        header = handle.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{what}: array {info.filename!r} holds objects")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != info.file_size - header:
        raise ModelFileError(
            f"{what}: array {info.filename!r} declares shape {shape} of {dtype} "
            f"({nbytes} bytes) but holds {info.file_size - header} bytes")


# --- networks -------------------------------------------------------------------

def safetensors_values(path: Path) -> int:
    """The number of values a safetensors file holds, from its header alone."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = handle.read(8)
        if len(start) < 8:
            raise ModelFileError(f"the weights {path.name} are truncated")
        (length,) = struct.unpack("<Q", start)
        if length > min(size - 8, current().max_json_bytes):
            raise ModelFileError(f"the weights {path.name} have a header of "
                                 f"{length} bytes in a file of {size}")
        header = read_json(handle.read(length), f"the header of {path.name}")
    if not isinstance(header, dict):
        raise ModelFileError(f"the header of {path.name} is not a JSON object")
    total = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(
                type(n) is int and n >= 0 for n in shape):
            raise ModelFileError(f"the weights {path.name}: tensor {key!r} has "
                                 f"no valid shape")
        total += math.prod(shape)
    return total


def check_parameters(count: int, weights: Path, what: str) -> None:
    """A network of ``count`` parameters (estimated on the meta device) may be
    built: within ``max_parameters``, and no more than its weights hold."""
    if count > current().max_parameters:
        raise ModelFileError(
            f"{what} has {count:,} parameters, over the limit of "
            f"max_parameters={current().max_parameters:,}; if you trust the file, "
            f"load it with sktransfer.load(path, max_parameters={count})")
    held = safetensors_values(weights)
    if count > held:
        raise ModelFileError(
            f"{what} has {count:,} parameters but its weights file "
            f"{weights.name} holds {held:,} values: the file does not describe "
            f"its own network")


def meta_parameter_count(module) -> int:
    """Parameters of a module built on the meta device (shared ones once)."""
    return sum(p.numel() for p in module.parameters())


# --- image preprocessing ----------------------------------------------------------

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos",
                   "nearest-exact")


def image_config(config: object) -> dict:
    """The saved eval config of an image network, each value checked."""
    if not isinstance(config, dict):
        raise ModelFileError(f"the image config {config!r} is not a mapping")
    allowed = {"input_size", "mean", "std", "interpolation", "crop_pct"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ModelFileError(f"the image config has unknown keys {unknown}; "
                             f"allowed are {sorted(allowed)}")
    out: dict[str, object] = {}
    low, high = current().min_image_size, current().max_image_size
    if "input_size" in config:
        size = config["input_size"]
        if not (isinstance(size, list) and len(size) == 3 and size[0] == 3
                and all(type(n) is int for n in size)
                and all(low <= n <= high for n in size[1:])):
            raise ModelFileError(
                f"the image config's input_size {size!r} is not [3, H, W] with "
                f"H and W between {low} and {high} pixels (load(path, "
                f"max_image_size=...) raises the upper bound)")
        out["input_size"] = tuple(size)
    for key in ("mean", "std"):
        if key in config:
            values = config[key]
            if not (isinstance(values, list) and len(values) == 3 and all(
                    type(v) in (int, float) and math.isfinite(v) for v in values)
                    and (key == "mean" or min(values) > 0)):
                raise ModelFileError(f"the image config's {key} {values!r} is not "
                                     f"3 finite numbers" + (" above 0" if key ==
                                                            "std" else ""))
            out[key] = tuple(float(v) for v in values)
    if "interpolation" in config:
        if config["interpolation"] not in _INTERPOLATIONS:
            raise ModelFileError(f"the image config's interpolation "
                                 f"{config['interpolation']!r} is not one of "
                                 f"{list(_INTERPOLATIONS)}")
        out["interpolation"] = config["interpolation"]
    if "crop_pct" in config:
        crop = config["crop_pct"]
        low_crop = current().min_crop_pct
        if type(crop) not in (int, float) or not (low_crop <= crop <= 1):
            raise ModelFileError(f"the image config's crop_pct {crop!r} is not "
                                 f"between {low_crop} and 1")
        out["crop_pct"] = float(crop)
    return out


def check_image_size(value: object, what: str) -> None:
    """An image side read from a file (``image_size``): None or within the
    limits, so that a file never asks for a 6000-pixel resize."""
    low, high = current().min_image_size, current().max_image_size
    if value is not None and (type(value) is not int or not low <= value <= high):
        raise ModelFileError(
            f"{what} is {value!r}, not None or an image side between {low} and "
            f"{high} pixels (the limit max_image_size={high}; if you trust the "
            f"file, load it with sktransfer.load(path, max_image_size=...))")


def check_finite(module, what: str) -> None:
    """Every floating-point weight of the loaded ``module`` is finite."""
    import torch

    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"{what}: the weight {name!r} holds NaN or "
                                 f"infinite values")


def check_int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ModelFileError(f"{what} is {value!r}, not an integer between {low} "
                             f"and {high}")
    return value


# --- the loaded objects -------------------------------------------------------

# What rebuilding a network from a damaged or crafted description raises.
REBUILD_ERRORS = (KeyError, TypeError, ValueError, OSError, RuntimeError,
                  AttributeError, ImportError, ArithmeticError, RecursionError,
                  IndexError)


def check_data_only(objects, path: Path) -> None:
    """A loaded sktransfer object holds data only: no instance attribute may
    stand in for a method of its class, none of the state that is derived
    (cache keys, loaded networks, runners) is taken from the file, and a
    persistent cache folder named in the file is not used (in-memory cache)."""
    for obj in objects:
        cls = type(obj)
        if not cls.__module__.startswith("sktransfer"):
            continue
        for name in list(obj.__dict__):
            if isinstance(getattr(cls, name, None), property):
                del obj.__dict__[name]  # e.g. model_key_ in older files
            elif callable(getattr(cls, name, None)):
                raise ModelFileError(f"{str(path)!r}: {cls.__name__}.{name} is a "
                                     f"method, and the file sets it")
        for name in DERIVED:
            obj.__dict__.pop(name, None)
        cache = obj.__dict__.get("cache")
        if cache is not None and not isinstance(cache, bool):
            obj.__dict__["cache"] = True


# Private state computed on this machine, never read from a file.
DERIVED = ("_model", "_runner", "_model_key", "_weights_digest")
