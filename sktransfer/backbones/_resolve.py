"""``resolve_backbone``: any spec, image or text, to a ``Backbone``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from sktransfer.backbones._base import Backbone
from sktransfer.backbones._names import resolving_names_only
from sktransfer.backbones._text import BUNDLED_ALIASES, resolve_text_backbone
from sktransfer.backbones._words import VECTOR_SUFFIXES
from sktransfer.exceptions import ParameterError, ParameterTypeError

if TYPE_CHECKING:  # names used in annotations only
    import torch

__all__ = ["MODALITIES", "infer_modality", "resolve_backbone"]

MODALITIES = ("image", "text")


def resolve_backbone(
    spec: str | os.PathLike[str] | nn.Module,
    weights: str | os.PathLike[str] | None = "DEFAULT",
    *,
    modality: str | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    names_only: bool = False,
) -> Backbone:
    """Resolve a model spec, offline-first, to a ``Backbone`` in eval mode.

    Parameters
    ----------
    spec : str, path or nn.Module
        Image: a torchvision name (``"resnet50"``), ``"timm/<name>"``, the
        bundled ``"efficientnet_lite0"``, a checkpoint file or an
        ``nn.Module``. Text: a sentence-transformers name or folder (the
        bundled ``"all-MiniLM-L6-v2"``), ``"hf/<name or folder>"``, or a
        word2vec / GloVe text-format vectors file (``.txt`` / ``.vec``).
    weights : str, path or None, default="DEFAULT"
        Image: ``"DEFAULT"``, a weights enum name, a weights file or None
        (random initialisation, seeded by ``seed``). Text: ``"DEFAULT"``.
    modality : {"image", "text"} or None, default=None
        None infers it from the spec (see ``infer_modality``).
    device : str or torch.device, default="cpu"
        Where the module's weights are put.
    seed : int, default=0
        Seed of any random initialisation (image specs).
    names_only : bool, default=False
        Resolve ``spec`` only as a catalogue name, the bundled model or a hub
        name (read from the Hugging Face cache by name, or downloaded when
        online), never as a local file or folder: nothing named by ``spec``
        or ``weights`` is looked up, stat-ed or opened. ``sktransfer.load``
        resolves every name a model file holds this way (also set for a
        whole block by ``sktransfer.backbones.names_only()``).

    Returns
    -------
    Backbone
        ``module``, ``blocks``, ``out_features``, ``preprocess``,
        ``data_config``, ``modality``, ``name``.

    Raises
    ------
    ModelNotAvailableError
        The spec is unknown (with close matches), or its weights are not on
        this machine and cannot be downloaded (with where to put them, or
        which bundled model works offline).
    """
    if modality is None:
        modality = infer_modality(spec, names_only=names_only)
    if modality == "text":
        return resolve_text_backbone(spec, weights, device, names_only=names_only)
    if modality != "image":
        raise ParameterError(f"modality must be one of {MODALITIES} or None, got "
                         f"{modality!r}")
    from sktransfer.backbones._image import resolve_image_backbone

    return resolve_image_backbone(spec, weights, seed, device,
                                  names_only=names_only)


def infer_modality(spec: str | os.PathLike[str] | nn.Module, *,
                   names_only: bool = False) -> str:
    """``"image"`` or ``"text"``: what ``spec`` is, without loading it.

    ``nn.Module`` specs, torchvision and timm names, the bundled image model
    and checkpoint files are images; ``"hf/..."``, folders, vectors files
    (``.txt`` / ``.vec``) and the bundled MiniLM are text. Another name is
    an image name when it is close to one (a typo: the image error lists the
    close matches), else a sentence-transformers hub name. ``names_only``:
    from the text alone (no file or folder is looked up).
    """
    from sktransfer.backbones._image import close_image_names, is_image_name

    if isinstance(spec, nn.Module):
        return "image"
    if not isinstance(spec, (str, os.PathLike)):
        raise ParameterTypeError(
            f"a model spec must be a name, a path or an nn.Module, got "
            f"{type(spec).__name__}"
        )
    name = os.fspath(spec)
    if name.startswith("hf/") or name in BUNDLED_ALIASES:
        return "text"
    if resolving_names_only(names_only):
        return "image" if is_image_name(name) else "text"
    path = Path(name)
    if path.is_dir() or name.lower().endswith(VECTOR_SUFFIXES):
        return "text"
    if path.is_file() or is_image_name(name):
        return "image"
    return "image" if close_image_names(name, cutoff=0.8) else "text"
