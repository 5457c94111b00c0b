"""``export(model, path, int8=False)``: a fitted pipeline as one ONNX file.

The file runs with ONNX Runtime alone (no sktransfer, no torch; see
docs/export.md):

- image pipelines: input ``image``, uint8 ``(N, H, W, 3)`` of any ``H`` and
  ``W`` (one size per call); the preprocessing is in the graph (antialiased
  bicubic resize of the shorter side, centre crop, scaling and
  normalisation), then the network, then the scikit-learn steps converted by
  skl2onnx. Classifiers output ``label`` ``(N,)`` and ``probabilities``
  ``(N, n_classes)``; regressors ``prediction``.
- a head-only multi-label ``FineTunedClassifier`` (``freeze_depth="all"``,
  fitted on a 0/1 indicator or label lists): input ``image`` as above, the
  network with its linear head and a sigmoid, outputs ``label``, the 0/1
  ``(N, n_labels)`` int64 matrix (each label on where its probability
  reaches ``thresholds_``), and ``probabilities`` ``(N, n_labels)``.
- text pipelines: input ``text``, strings ``(N,)``, tokenized in the graph by
  onnxruntime-extensions' ``BertTokenizer`` op (WordPiece models such as
  all-MiniLM-L6-v2; the runtime then needs ``onnxruntime-extensions``). That
  op reads one text per call, so the graph loops over the texts.
"""

from __future__ import annotations

import os
import sys
import types
from typing import TYPE_CHECKING, Any

import numpy as np

from sktransfer.exceptions import MissingDependencyError, ParameterError

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

__all__ = ["export"]

OPSET = 18  # Resize's antialias needs 18
ML_OPSET = 3


def export(model: BaseEstimator, path: str | os.PathLike[str], int8: bool = False,
           calibration: Any = None) -> str:
    """Write the fitted ``model`` as one ONNX file.

    Parameters
    ----------
    model : Pipeline or FineTunedClassifier
        A fitted pipeline whose first step is a ``PretrainedImageFeatures``
        or ``PretrainedTextEmbeddings`` and whose other steps skl2onnx
        converts (scalers, linear models, SVC, trees...); or a multi-label
        ``FineTunedClassifier(freeze_depth="all")`` (module docstring).
    path : str or path
        The ``.onnx`` file to write.
    int8 : bool, default=False
        Quantize the network: dynamic int8 for text; for images static QDQ
        with the activation ranges of a fit with ``runtime="onnx-int8"``, or
        calibrated on ``calibration``.
    calibration : sequence of images, default=None
        Images to calibrate an int8 image export on, when the embedder was
        not fitted with ``runtime="onnx-int8"``.

    Returns
    -------
    str
        ``path``.
    """
    _require("onnx", "skl2onnx", "onnxruntime")
    import onnx

    if _is_multilabel_finetuned(model):
        graph = _multilabel_finetuned(model, int8)
        onnx.checker.check_model(graph)
        path = os.fspath(path)
        onnx.save(graph, path)
        return path
    embedder, head = _split(model)
    backbone = _backbone_model(embedder, int8, calibration)
    if hasattr(embedder, "_calibration_batches"):  # images
        from sktransfer._embedding.export_image import preprocess_graph

        front = preprocess_graph(embedder.backbone_.data_config)
        graph = _merge(front, backbone, [("images", "bb_images")])
    else:
        from sktransfer._embedding.export_text import text_front

        graph = text_front(embedder, backbone)
    graph = _merge(graph, _head_model(head, embedder.n_features_out_),
                   [(graph.graph.output[0].name, "head_features")])
    onnx.checker.check_model(graph)
    path = os.fspath(path)
    onnx.save(graph, path)
    return path


def _require(*modules):
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"sktransfer.export needs {', '.join(missing)}: "
            f"pip install 'sktransfer[export]'")


def _split(model):
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from sktransfer.image import PretrainedImageFeatures
    from sktransfer.text import PretrainedTextEmbeddings

    if not isinstance(model, Pipeline):
        raise ParameterError(
            f"export takes a fitted Pipeline(PretrainedImageFeatures or "
            f"PretrainedTextEmbeddings, scikit-learn steps...); got "
            f"{type(model).__name__} (fine-tuned estimators cannot be exported "
            f"yet, except a head-only multi-label "
            f"FineTunedClassifier(freeze_depth='all'))")
    name, first = model.steps[0]
    if not isinstance(first, (PretrainedImageFeatures, PretrainedTextEmbeddings)):
        raise ParameterError(
            f"the pipeline's first step {name!r} is a {type(first).__name__}; "
            f"export needs PretrainedImageFeatures or PretrainedTextEmbeddings")
    check_is_fitted(model)
    if isinstance(first, PretrainedTextEmbeddings) and \
            first.backbone_.data_config["kind"] == "word2vec":
        raise ParameterError(f"step {name!r}: word-vector models cannot be "
                             f"exported (nothing to run in ONNX)")
    rest = model.steps[1:]
    if not rest:
        raise ParameterError("the pipeline has no scikit-learn step after "
                             f"{name!r} to export")
    _check_convertible(rest)
    return first, Pipeline(rest)


def _is_multilabel_finetuned(model) -> bool:
    from sktransfer.finetune import FineTunedClassifier

    return isinstance(model, FineTunedClassifier) and \
        "thresholds_" in model.__dict__


def _multilabel_finetuned(model, int8: bool):
    """The image front, the network, head and sigmoid, then the thresholds."""
    import copy

    import onnx
    import torch
    from onnx import TensorProto, compose, helper, numpy_helper, version_converter

    from sktransfer._embedding.export_image import preprocess_graph
    from sktransfer._embedding.runtime import export_cached

    if model.n_frozen_ != model.n_blocks_:
        raise ParameterError(
            f"export takes a head-only multi-label FineTunedClassifier "
            f"(freeze_depth='all'); this one was fitted with "
            f"freeze_depth={model.freeze_depth!r}")
    if model.lora_rank is not None:
        raise ParameterError("export of a FineTunedClassifier with LoRA adapters "
                             "is not supported; use lora_rank=None")
    if int8:
        raise ParameterError("int8=True is for pipelines; a FineTunedClassifier "
                             "is exported in float32 (int8=False)")
    module = copy.deepcopy(model.net_.module_).cpu().float().eval()
    config = dict(module.backbone.data_config)
    if model.image_size:
        config["input_size"] = (3, int(model.image_size), int(model.image_size))
    generator = torch.Generator().manual_seed(0)
    probe = {"images": torch.randn(2, *config["input_size"], generator=generator)}
    network = onnx.load(export_cached(_sigmoid_module()(module), probe, None,
                                      None))
    network = compose.add_prefix(version_converter.convert_version(network, OPSET),
                                 "bb_")
    graph = _merge(preprocess_graph(config), network, [("images", "bb_images")])
    (probabilities,) = [o.name for o in graph.graph.output]
    thresholds = np.asarray(model.thresholds_, np.float32)
    graph.graph.initializer.append(numpy_helper.from_array(thresholds,
                                                           "thresholds"))
    graph.graph.node.extend([
        helper.make_node("Identity", [probabilities], ["probabilities"]),
        helper.make_node("GreaterOrEqual", [probabilities, "thresholds"], ["on"]),
        helper.make_node("Cast", ["on"], ["label"], to=TensorProto.INT64),
    ])
    n_labels = len(thresholds)
    del graph.graph.output[:]
    graph.graph.output.extend([
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N", n_labels]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                      ["N", n_labels]),
    ])
    return graph


def _sigmoid_module():
    import torch

    class Sigmoid(torch.nn.Module):
        """``sigmoid(module(images))``: each label's probability."""

        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, images):
            return torch.sigmoid(self.module(images))

    return Sigmoid


def _check_convertible(steps):
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for name, step in steps:
        if step == "passthrough" or type(step) not in sklearn_operator_name_map:
            raise ParameterError(
                f"pipeline step {name!r} ({type(step).__name__}) has no skl2onnx "
                f"converter: export supports scikit-learn's scalers, "
                f"decompositions, linear models, SVMs, trees and ensembles")


def _backbone_model(embedder, int8, calibration):
    """The embedder's network as an ONNX model (opset ``OPSET``), its input
    and output prefixed ``bb_``."""
    import onnx
    from onnx import compose, version_converter

    from sktransfer._embedding.int8 import int8_file
    from sktransfer._embedding.runtime import export_cached

    module, probe, identity, _ = embedder._runner_parts()
    path = export_cached(module, probe, identity, None)
    if int8:
        static = hasattr(embedder, "_calibration_batches")
        ranges = getattr(embedder, "int8_calibration_", None) if static else None
        batches = None
        if static and ranges is None:
            if calibration is None:
                raise ParameterError(
                    "an int8 image export needs calibration images: fit the "
                    "embedder with runtime='onnx-int8', or pass calibration=X "
                    "(sktransfer export --calibration FOLDER)")
            batches = embedder._calibration_batches(calibration)
        path, _ = int8_file(path, batches=batches, ranges=ranges, static=static)
    model = onnx.load(path)
    model = version_converter.convert_version(model, OPSET)
    return compose.add_prefix(model, "bb_")


def _head_model(head, width):
    import onnx
    from onnx import compose
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    last = head.steps[-1][1]
    options = {id(last): {"zipmap": False}} if hasattr(last, "classes_") else None
    try:
        model = convert_sklearn(head, initial_types=[("features", FloatTensorType(
            [None, width]))], target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
            options=options)
    except Exception as exc:  # the converter names what it cannot handle
        raise ParameterError(f"skl2onnx cannot convert the head "
                             f"{[n for n, _ in head.steps]}: {exc}") from exc
    outputs = [o.name for o in model.graph.output]
    if not hasattr(last, "classes_"):
        (name,) = outputs
        single = _single_output(last)
        shape = np.asarray([-1] if single else [0, -1], np.int64)
        model.graph.initializer.append(onnx.numpy_helper.from_array(shape,
                                                                    "out_shape"))
        model.graph.node.append(onnx.helper.make_node(
            "Reshape", [name, "out_shape"], ["prediction"]))
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            "prediction", onnx.TensorProto.FLOAT, ["N"] if single else ["N", None]))
    return compose.add_prefix(model, "head_")


def _single_output(estimator) -> bool:
    coef = getattr(estimator, "coef_", None)
    return coef is None or np.ndim(coef) == 1


def _merge(first, second, io_map):
    import onnx
    from onnx import compose

    version = max(first.ir_version, second.ir_version)
    first.ir_version = second.ir_version = version
    merged = compose.merge_models(first, second, io_map=io_map)
    final = []
    for output in merged.graph.output:  # drop the prefixes of the outputs
        name = output.name.removeprefix("head_")
        if name != output.name:
            merged.graph.node.append(onnx.helper.make_node(
                "Identity", [output.name], [name]))
            output = onnx.helper.make_value_info(name, output.type)
        final.append(output)
    del merged.graph.output[:]
    merged.graph.output.extend(final)
    return merged


class _CallableModule(types.ModuleType):
    """``sktransfer.export(...)`` keeps working once this module is imported
    (importing a submodule sets the package attribute of the same name)."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
