"""Options several commands share, each defined once: the model (``fit``,
``audit``, ``embed``) and how a frozen network runs (``fit``, ``predict``,
``audit``; ``embed`` takes ``--runtime`` alone). Their values are the
estimators' parameters: the estimators check them."""

from __future__ import annotations

from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT

__all__ = ["add_model_options", "add_runtime_options"]


def add_model_options(parser) -> None:
    """``--model`` and ``--weights``."""
    parser.add_argument("--model", help=f"model spec (default: {BUNDLED_IMAGE} for "
                                        f"images, {BUNDLED_TEXT} for text)")
    parser.add_argument("--weights", default="DEFAULT",
                        help="images: DEFAULT, a weights enum name, a file, or "
                             "None (random)")


def add_runtime_options(parser, *, decode: bool = True) -> None:
    """``--runtime``, and ``--exact-decode`` unless ``decode=False``."""
    parser.add_argument("--runtime",
                        help="what runs a frozen network: auto (default: ONNX "
                             "Runtime on the CPU when installed), torch, onnx or "
                             "onnx-int8")
    if decode:
        parser.add_argument("--exact-decode", action="store_true",
                            help="decode JPEGs at full resolution (default: "
                                 "draft mode at the size the network needs)")
