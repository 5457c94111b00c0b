"""Tokenizer + encoder as one ONNX graph, for ``sktransfer.export``.

``text`` strings ``(N,)`` -> ``features`` ``(N, d)``. onnxruntime-extensions'
``BertTokenizer`` op tokenizes WordPiece models (all-MiniLM-L6-v2 and other
BERT tokenizers) but reads one text (or a pair) per call, so a ``Loop`` runs
tokenizer and encoder text by text (no padding). Its outputs match the
Hugging Face tokenizer's once ``strip_accents`` follows ``do_lower_case``
(as BERT's uncased tokenizers do) and ``max_length`` truncates.
"""

from __future__ import annotations

import numpy as np

from sktransfer.exceptions import ParameterError

__all__ = ["text_front"]


def text_front(embedder, backbone):
    """The model ``text -> features`` around ``backbone`` (prefixed ``bb_``)."""
    from onnx import TensorProto, helper, numpy_helper

    node = _tokenizer_node(embedder)
    inputs = [i.name for i in backbone.graph.input]
    tokens = {"bb_input_ids": "ids", "bb_token_type_ids": "types",
              "bb_attention_mask": "mask"}
    unknown = [name for name in inputs if name not in tokens]
    if unknown:
        raise ParameterError(f"the text model takes inputs {unknown} that the "
                             f"ONNX tokenizer does not produce")
    n = helper.make_node
    body_nodes = [
        n("Gather", ["text", "i"], ["one"], axis=0),
        n("Reshape", ["one", "c_one"], ["texts1"]),
        node,
        *[n("Unsqueeze", [tokens[name], "c_zero"], [name]) for name in inputs],
        *backbone.graph.node,
        n("Identity", ["cond_in"], ["cond_out"]),
    ]
    width = backbone.graph.output[0].type.tensor_type.shape.dim[1]
    body = helper.make_graph(
        body_nodes, "per_text",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info(backbone.graph.output[0].name,
                                       TensorProto.FLOAT, [1, width.dim_value])])
    nodes = [
        n("Shape", ["text"], ["count1"]),
        n("Squeeze", ["count1", "c_zero"], ["count"]),
        n("Loop", ["count", ""], ["per_text"], body=body),
        n("Reshape", ["per_text", "c_rows"], ["features"]),
    ]
    constants = {"c_one": np.asarray([1], np.int64),
                 "c_zero": np.asarray([0], np.int64),
                 "c_rows": np.asarray([-1, width.dim_value], np.int64)}
    graph = helper.make_graph(
        nodes, "text_features",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                       ["N", width.dim_value])],
        [*backbone.graph.initializer,
         *[numpy_helper.from_array(v, k) for k, v in constants.items()]])
    opsets = {o.domain: o.version for o in backbone.opset_import}
    opsets["ai.onnx.contrib"] = 1
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid(domain, version) for domain, version in opsets.items()])
    model.ir_version = backbone.ir_version
    return model


def _tokenizer_node(embedder):
    from onnx import helper
    from onnxruntime_extensions import gen_processing_models

    tokenize = embedder.backbone_.preprocess
    tokenizer = getattr(tokenize, "tokenizer", None)
    try:
        pre, _ = gen_processing_models(tokenizer, pre_kwargs={})
    except Exception as exc:
        raise ParameterError(
            f"onnxruntime-extensions has no tokenizer op for "
            f"{type(tokenizer).__name__} ({exc}); export supports WordPiece "
            f"(BERT) tokenizers such as all-MiniLM-L6-v2's") from exc
    (node,) = pre.graph.node
    if node.op_type != "BertTokenizer" or getattr(tokenize, "lowercase", False):
        raise ParameterError(f"export supports BERT tokenizers; "
                             f"{type(tokenizer).__name__} uses {node.op_type}")
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("do_lower_case"):
        attributes["strip_accents"] = 1  # BERT uncased: strip_accents follows
    if embedder.max_length_ is not None:
        attributes["max_length"] = int(embedder.max_length_)
    return helper.make_node("BertTokenizer", ["texts1"], ["ids", "types", "mask",
                                                         "offsets"],
                            domain=node.domain, **attributes)
