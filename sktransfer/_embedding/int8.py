"""int8 copies of the cached fp32 ONNX exports (``runtime="onnx-int8"``).

- Text transformers: ONNX Runtime's **dynamic** quantization (per-channel int8
  weights of the MatMul / Gather nodes, activations quantized on the fly per batch). It
  needs no data.
- Image networks: **static** quantization in the QDQ format, per-channel int8
  weights, int8 activations whose ranges (min / max) are calibrated on up to
  ``CALIBRATION_SIZE`` of the images passed to ``fit``. The ranges are kept on
  the fitted estimator (``int8_calibration_``, a small JSON text), so a loaded
  model rebuilds the same int8 file without the data.

The int8 file is cached beside the fp32 export it comes from, named after it,
the scheme and (static) a hash of the ranges.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping

import numpy as np

from sktransfer._utils.files import replacing
from sktransfer.exceptions import ParameterError

__all__ = ["CALIBRATION_SIZE", "calibration_rows", "int8_file"]

CALIBRATION_SIZE = 200  # images used to calibrate a static quantization
_SCHEME = 2  # bump when the quantization settings below change


def calibration_rows(n: int, size: int = CALIBRATION_SIZE) -> list[int]:
    """At most ``size`` row indices spread evenly over ``range(n)``."""
    if n <= size:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, size)})


def int8_file(fp32_path: str, *, batches: Iterable[Mapping] | None = None,
              ranges: str | None = None,
              static: bool = False) -> tuple[str, str | None]:
    """``(path, ranges)``: the cached int8 copy of ``fp32_path``.

    ``static=False``: dynamic quantization (``ranges`` is None). ``static=True``:
    QDQ static quantization with ``ranges`` (the JSON text a previous call
    returned), or calibrated on ``batches`` (dicts of input name -> array).
    """
    stem, _ = os.path.splitext(fp32_path)
    if not static:
        path = f"{stem}.int8-dynamic-{_SCHEME}.onnx"
        if not os.path.isfile(path):
            with replacing(path) as partial:
                _quantize_dynamic(fp32_path, str(partial))
        return path, None
    if ranges is None:
        if batches is None:
            raise ParameterError("static int8 quantization needs calibration data: fit "
                                 "on images, or pass calibration images")
        ranges = _calibrate(fp32_path, batches)
    digest = hashlib.blake2b(ranges.encode(), digest_size=8).hexdigest()
    path = f"{stem}.int8-qdq-{_SCHEME}-{digest}.onnx"
    if not os.path.isfile(path):
        with replacing(path) as partial:
            _quantize_static(fp32_path, str(partial), ranges)
    return path, ranges


def _quantize_dynamic(source: str, out: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel: embeddings within 0.99 cosine of fp32 on average (0.95
    # per-tensor) at the same speed (all-MiniLM-L6-v2, RESULTS.md "int8").
    quantize_dynamic(source, out, weight_type=QuantType.QInt8, per_channel=True)


def _static_options() -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType

    # Measured on EfficientNet-Lite0 (benchmarks/RESULTS.md, "int8"): per-tensor
    # weights lose too much on the depthwise convolutions; QOperator fails.
    return dict(quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def _calibrate(source: str, batches: Iterable[Mapping]) -> str:
    """Activation ranges of ``source`` on ``batches``, as JSON text."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    feeds = iter(list(batches))

    class _Reader(CalibrationDataReader):
        def get_next(self):
            batch = next(feeds, None)
            return None if batch is None else {k: np.asarray(v) for k, v in
                                               batch.items()}

    with tempfile.TemporaryDirectory(prefix="sktransfer-int8-") as tmp:
        cache = os.path.join(tmp, "ranges.json")
        quantize_static(source, os.path.join(tmp, "q.onnx"), _Reader(),
                        calibration_cache_path=cache, **_static_options())
        with open(cache, encoding="utf-8") as handle:
            return json.dumps(json.load(handle), sort_keys=True)


def _quantize_static(source: str, out: str, ranges: str) -> None:
    from onnxruntime.quantization import quantize_static

    with tempfile.TemporaryDirectory(prefix="sktransfer-int8-") as tmp:
        cache = os.path.join(tmp, "ranges.json")
        with open(cache, "w", encoding="utf-8") as handle:
            handle.write(ranges)
        quantize_static(source, out, None, calibration_cache_path=cache,
                        **_static_options())

