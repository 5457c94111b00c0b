"""The image preprocessing as an ONNX graph, for ``sktransfer.export``.

``image`` uint8 ``(N, H, W, 3)`` -> ``images`` float32 ``(N, 3, S, S)``, the
computation of ``sktransfer.backbones.make_eval_transform`` on a decoded
image: resize the shorter side to ``round(S / crop_pct)`` (the longer side
``int(size * long / short)``, as torchvision) with antialiasing, rounded back
to 0..255 as torchvision does on uint8 images, centre crop ``S`` x ``S``
(offsets ``round((side - S) / 2)``), scale to 0..1 and normalise.

An image more elongated than ``sktransfer.data.MAX_ASPECT_RATIO`` fails, as
it does in Python, before the resize allocates anything: resizing the shorter
side of a 5000 x 10 image to 256 would make it 128000 pixels long. ONNX has no
error operator, so a ``Reshape`` of one element to ``[ok]`` (``[0]`` when the
ratio is over) fails in its place; the error names that node,
``image_aspect_ratio_over_50_to_1_is_refused``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["preprocess_graph"]

# torchvision's antialiased bicubic (as PIL) uses a = -0.5; ONNX defaults to -0.75.
_MODES = {"bicubic": ("cubic", -0.5), "bilinear": ("linear", -0.75),
          "nearest": ("nearest", -0.75)}


def preprocess_graph(config: dict, opset: int = 18):
    """The ONNX model of the eval transform described by ``config``."""
    from onnx import TensorProto, helper, numpy_helper

    from sktransfer.data import MAX_ASPECT_RATIO

    size = int(config["input_size"][-1])
    resize = int(round(size / config.get("crop_pct", 0.875)))
    mode, cubic = _MODES.get(str(config.get("interpolation", "bilinear")),
                             _MODES["bilinear"])
    mean = np.asarray(config["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(config["std"], np.float32).reshape(1, 3, 1, 1)
    constants: dict[str, np.ndarray] = {
        "c_resize": np.asarray(resize, np.int64), "c_size": np.asarray(size, np.int64),
        "c_two": np.asarray(2, np.float32),
        "c_i2": np.asarray([2], np.int64), "c_i3": np.asarray([3], np.int64),
        "c_0": np.asarray(0, np.float32), "c_255": np.asarray(255, np.float32),
        "c_mean": mean, "c_scale": (1 / (255 * std)).astype(np.float32),
        "c_mean255": (mean * 255).astype(np.float32),
        "c_ratio": np.asarray(MAX_ASPECT_RATIO, np.int64),
        "c_one": np.asarray([1], np.int64),
    }
    n = helper.make_node
    nodes = [
        n("Cast", ["image"], ["x_f"], to=TensorProto.FLOAT),
        n("Transpose", ["x_f"], ["x"], perm=[0, 3, 1, 2]),
        n("Shape", ["x"], ["shape"]),
        n("Gather", ["shape", "c_i2"], ["h"]),
        n("Gather", ["shape", "c_i3"], ["w"]),
        n("Min", ["h", "w"], ["short"]),
        # the aspect-ratio bound: a failing Reshape named after it, and its
        # output (1) multiplies the sizes, so that it runs before the Resize
        n("Max", ["h", "w"], ["long"]),
        n("Mul", ["short", "c_ratio"], ["long_allowed"]),
        n("LessOrEqual", ["long", "long_allowed"], ["ratio_ok"]),
        n("Cast", ["ratio_ok"], ["ratio_ok_i"], to=TensorProto.INT64),
        n("Reshape", ["c_one", "ratio_ok_i"], ["ratio_checked"], allowzero=1,
          name=f"image_aspect_ratio_over_{MAX_ASPECT_RATIO}_to_1_is_refused"),
        # torchvision: the shorter side -> resize, the longer int(resize * l / s)
        n("Mul", ["h", "c_resize"], ["h_r"]), n("Div", ["h_r", "short"], ["new_h"]),
        n("Mul", ["w", "c_resize"], ["w_r"]), n("Div", ["w_r", "short"], ["new_w"]),
        # all four sizes, no ``axes``: ONNX Runtime's layout optimizer (int8
        # graphs) loses the sizes of a Resize with ``axes``
        n("Slice", ["shape", "c_start", "c_i2"], ["n_c"]),
        n("Concat", ["n_c", "new_h", "new_w"], ["sizes_wanted"], axis=0),
        n("Mul", ["sizes_wanted", "ratio_checked"], ["sizes"]),
        n("Resize", ["x", "", "", "sizes"], ["resized"], mode=mode,
          cubic_coeff_a=cubic, antialias=1,
          coordinate_transformation_mode="half_pixel"),
        n("Round", ["resized"], ["rounded"]),
        n("Clip", ["rounded", "c_0", "c_255"], ["pixels"]),
        # centre crop: top = round((new_h - size) / 2), likewise left
        *_offset(n, "new_h", "top"), *_offset(n, "new_w", "left"),
        n("Add", ["top", "c_size1"], ["bottom"]),
        n("Add", ["left", "c_size1"], ["right"]),
        n("Concat", ["top", "left"], ["starts"], axis=0),
        n("Concat", ["bottom", "right"], ["ends"], axis=0),
        n("Slice", ["pixels", "starts", "ends", "c_axes"], ["cropped"]),
        # (x / 255 - mean) / std  ==  (x - 255 mean) / (255 std)
        n("Sub", ["cropped", "c_mean255"], ["centred"]),
        n("Mul", ["centred", "c_scale"], ["images"]),
    ]
    constants["c_start"] = np.asarray([0], np.int64)
    constants["c_size1"] = np.asarray([size], np.int64)
    constants["c_axes"] = np.asarray([2, 3], np.int64)
    graph = helper.make_graph(
        nodes, "preprocess",
        [helper.make_tensor_value_info("image", TensorProto.UINT8,
                                       ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       ["N", 3, size, size])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()
         if k != "c_mean"])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _offset(n, side: str, out: str):
    from onnx import TensorProto

    return [
        n("Sub", [side, "c_size"], [f"{out}_d"]),
        n("Cast", [f"{out}_d"], [f"{out}_f"], to=TensorProto.FLOAT),
        n("Div", [f"{out}_f", "c_two"], [f"{out}_h"]),
        n("Round", [f"{out}_h"], [f"{out}_r"]),
        n("Cast", [f"{out}_r"], [out], to=TensorProto.INT64),
    ]
