"""int8 copies of the cached fp32 ONNX exports (``runtime="onnx-int8"``).

- Text transformers: ONNX Runtime's **dynamic** quantization (per-channel int8
  weights of the MatMul / Gather nodes, activations quantized on the fly per batch). It
  needs no data.
- Image networks: **static** quantization in the QDQ format, per-channel int8
  weights, uint8 activations whose ranges (min / max) are calibrated on up to
  ``CALIBRATION_SIZE`` of the images passed to ``fit``. The ranges are kept on
  the fitted estimator (``int8_calibration_``, a small JSON text), so a loaded
  model rebuilds the same int8 file without the data. Before quantizing, the
  graph goes through ONNX Runtime's ``quant_pre_process`` (constant folding,
  shape inference) and each constant zero ``Pad`` is folded into the ``Conv``
  it feeds: every convolution then runs as one quantized kernel.

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

__all__ = ["CALIBRATION_SIZE", "calibration_rows", "fold_pads", "int8_file"]

CALIBRATION_SIZE = 200  # images used to calibrate a static quantization
_SCHEME = 3  # bump when the quantization settings below change


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

    # Measured on EfficientNet-Lite0 (benchmarks/RESULTS.md, "int8 and
    # export"): per-tensor weights lose too much on the depthwise convolutions;
    # uint8 activations (u8 x s8, the VNNI instruction) run ~2x faster than int8
    # ones at the same accuracy; QOperator fails.
    return dict(quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def _prepared(source: str, folder: str) -> str:
    """``source`` ready to quantize, written in ``folder``: ONNX Runtime's
    pre-processing, then each constant ``Pad`` folded into its ``Conv``."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = os.path.join(folder, "prepared.onnx")
    quant_pre_process(source, path)
    model = onnx.load(path)
    fold_pads(model.graph)
    # ONNX Runtime's optimizer declares every domain it knows (ai.onnx.ml 5...):
    # keep those the graph uses, or sktransfer.export cannot merge the head's
    used = {node.domain for node in model.graph.node} | {""}
    opsets = {o.domain: o.version for o in model.opset_import if o.domain in used}
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(domain, version)
                              for domain, version in opsets.items())
    onnx.save(model, path)
    return path


def fold_pads(graph) -> int:
    """Fold each zero, constant ``Pad`` of the two spatial axes that only feeds
    ``Conv`` nodes into their ``pads``; the number of ``Pad`` nodes removed.

    ``quantize_static`` would quantize a separate ``Pad`` on its own, and ONNX
    Runtime then runs its ``Conv`` unfused (EfficientNet's TF-"same" padding).
    """
    from onnx import helper, numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    kept = {o.name for o in graph.output}
    folded = [pad for pad in graph.node if pad.op_type == "Pad"
              and pad.output[0] not in kept
              and _fold_pad(pad, values, users.get(pad.output[0], []), helper)]
    for pad in folded:
        graph.node.remove(pad)
    return len(folded)


def _fold_pad(pad, values, convs, helper) -> bool:
    mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    pads = values.get(pad.input[1]) if len(pad.input) > 1 else None
    fill = values.get(pad.input[2], 0) if len(pad.input) > 2 and pad.input[2] else 0
    if (mode != b"constant" or pads is None or pads.shape != (8,) or (pads < 0).any()
            or pads[[0, 1, 4, 5]].any() or np.any(fill != 0)
            or (len(pad.input) > 3 and pad.input[3]) or not convs):
        return False
    for conv in convs:
        auto = next((a.s for a in conv.attribute if a.name == "auto_pad"), b"NOTSET")
        if (conv.op_type != "Conv" or conv.input[0] != pad.output[0]
                or auto != b"NOTSET"):
            return False
    for conv in convs:
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        before = list(old.ints) if old is not None else [0, 0, 0, 0]
        if old is not None:
            conv.attribute.remove(old)
        # ONNX pads: (begin H, begin W, end H, end W); Pad's: all 4 axes' begins, ends
        extra = [int(pads[i]) for i in (2, 3, 6, 7)]
        conv.attribute.append(helper.make_attribute(
            "pads", [a + b for a, b in zip(before, extra, strict=True)]))
        conv.input[0] = pad.input[0]
    return True


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
        quantize_static(_prepared(source, tmp), os.path.join(tmp, "q.onnx"),
                        _Reader(), calibration_cache_path=cache, **_static_options())
        with open(cache, encoding="utf-8") as handle:
            return json.dumps(json.load(handle), sort_keys=True)


def _quantize_static(source: str, out: str, ranges: str) -> None:
    import onnx
    from onnxruntime.quantization import quantize_static

    with tempfile.TemporaryDirectory(prefix="sktransfer-int8-") as tmp:
        prepared = _prepared(source, tmp)
        _check_ranges(onnx.load(prepared).graph, json.loads(ranges))
        cache = os.path.join(tmp, "ranges.json")
        with open(cache, "w", encoding="utf-8") as handle:
            handle.write(ranges)
        quantize_static(prepared, out, None, calibration_cache_path=cache,
                        **_static_options())


def _check_ranges(graph, ranges: dict) -> None:
    """Ranges calibrated on another graph (an older sktransfer's export) would
    leave convolutions unquantized: an error (the runtime falls back to torch)."""
    named = ranges.get("data", {})  # onnxruntime's TensorsData as JSON
    missing = [node.input[0] for node in graph.node
               if node.op_type == "Conv" and node.input[0] not in named]
    if missing:
        raise ParameterError(
            f"the int8 calibration does not match this network ({len(missing)} "
            f"convolution inputs without a range, e.g. {missing[0]!r}): it was "
            f"made by another sktransfer version; fit again on images")

