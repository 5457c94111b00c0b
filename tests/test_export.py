"""runtime="onnx-int8" and sktransfer.export: real models, real data.

The exported files run in a subprocess where importing torch (and
sktransfer) fails: ONNX Runtime alone computes the predictions.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.exceptions import ParameterError

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime_extensions")

_NO_TORCH = """
import sys
sys.modules["torch"] = None  # any "import torch" raises ImportError
"""

_RUN = """
import json, sys
import numpy as np
import onnxruntime as ort
try:
    import torch  # noqa: F401
    raise SystemExit("torch was importable")
except ImportError:
    pass
options = ort.SessionOptions()
if sys.argv[3] == "text":
    from onnxruntime_extensions import get_library_path
    options.register_custom_ops_library(get_library_path())
session = ort.InferenceSession(sys.argv[1], options)
inputs = np.load(sys.argv[2], allow_pickle=False)
label, probabilities = session.run(["label", "probabilities"], {sys.argv[3]: inputs})
print(json.dumps({"label": label.tolist(), "probabilities": probabilities.tolist(),
                  "torch_loaded": "torch" in sys.modules and sys.modules["torch"]
                  is not None}))
"""


def _run_without_torch(tmp_path, model_path, inputs, name):
    """Predictions of ``model_path`` by onnxruntime in a torch-free process."""
    (tmp_path / "sitecustomize.py").write_text(_NO_TORCH)
    (tmp_path / "run.py").write_text(textwrap.dedent(_RUN))
    np.save(tmp_path / "inputs.npy", inputs)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(model_path),
         str(tmp_path / "inputs.npy"), name],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["torch_loaded"]
    return np.asarray(result["label"]), np.asarray(result["probabilities"])


@pytest.fixture(scope="module")
def texts():
    X, y = load_chatterbot_topics()
    X, y = np.asarray(X, dtype=object), np.asarray(y)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:240]], y[order[:240]], X[order[240:360]], y[order[240:360]]


@pytest.mark.slow
def test_text_int8_embeddings_close_to_fp32_and_accuracy_kept(texts):
    X, y, X_test, y_test = texts
    fp32 = PretrainedTextEmbeddings(runtime="torch", cache=False).fit(X)
    int8 = PretrainedTextEmbeddings(runtime="onnx-int8", cache=False).fit(X)
    assert int8.runtime_ == "onnx-int8"
    e32, e8 = fp32.transform(X_test), int8.transform(X_test)
    cosine = np.sum(e32 * e8, axis=1)  # both unit-norm
    assert cosine.mean() > 0.97 and cosine.min() > 0.9
    scores = [LogisticRegression(max_iter=2000).fit(model.transform(X), y)
              .score(test, y_test) for model, test in ((fp32, e32), (int8, e8))]
    assert scores[0] > 0.6  # the task is learnable: the comparison means something
    assert scores[1] >= scores[0] - 0.03


@pytest.mark.slow
def test_exported_text_pipeline_runs_without_torch(texts, tmp_path):
    X, y, X_test, _ = texts
    model = make_pipeline(PretrainedTextEmbeddings(runtime="onnx-int8", cache=False),
                          LogisticRegression(max_iter=2000)).fit(X, y)
    path = sktransfer.export(model, tmp_path / "text.onnx", int8=True)
    labels, probabilities = _run_without_torch(
        tmp_path, path, np.asarray(X_test[:60], dtype=str), "text")
    assert np.mean(labels == model.predict(X_test[:60])) >= 0.95
    assert probabilities.shape == (60, len(model.classes_))


@pytest.fixture(scope="module")
def photo_model():
    X, y = load_photo_patches(n_per_class=8, size=64)
    model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0", cache=False),
                          StandardScaler(), LogisticRegression(max_iter=2000))
    return model.fit(X, y)


@pytest.mark.slow
def test_exported_image_pipeline_agrees_with_predict_without_torch(photo_model,
                                                                    tmp_path):
    X_test, y_test = load_photo_patches(n_per_class=6, size=72, split="test")
    path = sktransfer.export(photo_model, tmp_path / "image.onnx")
    labels, probabilities = _run_without_torch(tmp_path, path, X_test, "image")
    expected = photo_model.predict(X_test)
    assert np.mean(labels == expected) >= 0.95
    assert np.mean(expected == y_test) > 0.5  # a real model, not chance
    # in-graph resize vs torchvision's: probabilities close, not identical
    difference = np.abs(probabilities - photo_model.predict_proba(X_test))
    assert difference.mean() < 0.02


class _Custom(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


@pytest.mark.slow
def test_export_names_the_step_it_cannot_convert(photo_model, tmp_path):
    X, y = load_photo_patches(n_per_class=3, size=48)
    steps = [photo_model.steps[0], ("odd", _Custom()), photo_model.steps[-1]]
    from sklearn.pipeline import Pipeline

    model = Pipeline(steps)
    model.steps[-1] = ("head", LogisticRegression(max_iter=500))
    model.fit(X, y)
    with pytest.raises(ParameterError, match="'odd' \\(_Custom\\)"):
        sktransfer.export(model, tmp_path / "x.onnx")


def test_the_preprocessing_graph_refuses_elongated_images():
    """As load_image does: resizing the shorter side of a 5000 x 10 image to
    256 would allocate a 128000 x 256 image; the graph fails first."""
    import onnxruntime as ort

    from sktransfer._embedding.export_image import preprocess_graph
    from sktransfer.data import MAX_ASPECT_RATIO

    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "mean": (0.5,) * 3,
              "std": (0.25,) * 3, "interpolation": "bicubic"}
    session = ort.InferenceSession(preprocess_graph(config).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for shape in ((1, 10, 10 * MAX_ASPECT_RATIO, 3), (2, 300, 200, 3)):
        (images,) = session.run(None, {"image": np.zeros(shape, np.uint8)})
        assert images.shape == (shape[0], 3, 224, 224)
    for shape in ((1, 10, 5000, 3), (1, 5000, 10, 3), (1, 10, 501, 3)):
        with pytest.raises(Exception, match="aspect_ratio_over_50_to_1_is_refused"):
            session.run(None, {"image": np.zeros(shape, np.uint8)})


def test_export_refuses_what_is_not_a_frozen_pipeline(tmp_path):
    with pytest.raises(ParameterError, match="fine-tuned estimators"):
        sktransfer.export(sktransfer.FineTunedClassifier(), tmp_path / "x.onnx")
    model = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(ParameterError, match="PretrainedImageFeatures"):
        sktransfer.export(model, tmp_path / "x.onnx")


@pytest.mark.slow
def test_export_command_writes_a_file_that_predicts_as_the_model(photo_model,
                                                                  tmp_path):
    import onnxruntime as ort

    from sktransfer.cli import main
    from sktransfer.cli.fit import MODEL_FORMAT

    saved = tmp_path / "model.skt"
    sktransfer.save(photo_model, saved, metadata={
        "format": MODEL_FORMAT, "modality": "image", "text_column": None,
        "task": "classification"})
    assert main(["export", str(saved), str(tmp_path / "out.onnx")]) == 0
    X_test, _ = load_photo_patches(n_per_class=2, size=64, split="test")
    session = ort.InferenceSession(str(tmp_path / "out.onnx"))
    (labels,) = session.run(["label"], {"image": X_test})
    assert np.mean(labels == photo_model.predict(X_test)) >= 0.9
    # --int8 of an image model fitted in fp32 needs images to calibrate on
    assert main(["export", str(saved), str(tmp_path / "q.onnx"), "--int8"]) == 2


@pytest.mark.slow
def test_exported_regressor_outputs_prediction(photo_model, tmp_path):
    import onnxruntime as ort
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    X, _ = load_photo_patches(n_per_class=3, size=64)
    embedder = photo_model.steps[0][1]
    features = embedder.transform(X)
    target = X.reshape(len(X), -1).mean(axis=1)  # brightness: a real signal
    model = Pipeline([("features", embedder),
                      ("ridge", Ridge(alpha=10.0).fit(features, target))])
    path = sktransfer.export(model, tmp_path / "regressor.onnx")
    session = ort.InferenceSession(str(path))
    assert [o.name for o in session.get_outputs()] == ["prediction"]
    (prediction,) = session.run(None, {"image": X})
    assert prediction.shape == (len(X),)
    # the in-graph resize differs a little from torchvision's (48 px upscaled)
    np.testing.assert_allclose(prediction, model.predict(X), rtol=0.05)


class _SameNet(torch.nn.Module):
    """TF-"same" convolutions of odd and even sizes (as EfficientNet's)."""

    def __init__(self):
        super().__init__()
        from timm.layers import Conv2dSame

        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            Conv2dSame(3, 8, 3, stride=2), torch.nn.ReLU6(),
            Conv2dSame(8, 8, 5, stride=2, groups=8), torch.nn.ReLU6(),
            torch.nn.Conv2d(8, 6, 1), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten())

    def forward(self, images):
        return self.body(images)


@pytest.mark.parametrize("side", [31, 32])
def test_static_same_padding_matches_torch_and_restores_forward(side):
    from sktransfer.backbones._timm import static_same_padding

    net = _SameNet().eval()
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)
        with static_same_padding(net):
            got = net(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert not any("forward" in vars(m) for m in net.modules())  # restored


def test_same_padding_exports_as_constants_folded_into_the_convolutions(tmp_path):
    import onnx
    import onnxruntime as ort

    from sktransfer._embedding.int8 import _prepared
    from sktransfer._embedding.runtime import _export

    net = _SameNet().eval()
    x = torch.randn(3, 3, 33, 33, generator=torch.Generator().manual_seed(2))
    _export(net, {"images": x[:2]}, str(tmp_path / "net.onnx"))
    ops = {node.op_type for node in onnx.load(tmp_path / "net.onnx").graph.node}
    assert not ops & {"Shape", "Ceil"}  # no padding computed at run time
    prepared = _prepared(str(tmp_path / "net.onnx"), str(tmp_path))
    ops = [node.op_type for node in onnx.load(prepared).graph.node]
    assert "Pad" not in ops and ops.count("Conv") == 3
    with torch.no_grad():
        expected = net(x).numpy()
    for path in (tmp_path / "net.onnx", prepared):  # 3 rows: batch is dynamic
        got = ort.InferenceSession(str(path)).run(None, {"images": x.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_fold_pads_keeps_what_a_convolution_cannot_pad():
    from onnx import TensorProto, helper, numpy_helper

    from sktransfer._embedding.int8 import fold_pads

    pads = numpy_helper.from_array(np.array([0, 0, 0, 1, 0, 0, 1, 0], np.int64),
                                   "pads")
    weight = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    one = numpy_helper.from_array(np.array(1, np.float32), "one")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["a"], mode="reflect"),
             helper.make_node("Conv", ["a", "w"], ["b"]),
             helper.make_node("Pad", ["b", "pads", "one"], ["c"]),  # fills ones
             helper.make_node("Conv", ["c", "w"], ["d"]),
             helper.make_node("Pad", ["d", "pads"], ["e"]),  # foldable
             helper.make_node("Conv", ["e", "w"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [pads, weight, one])
    assert fold_pads(graph) == 1
    assert [n.op_type for n in graph.node] == ["Pad", "Conv", "Pad", "Conv", "Conv"]
    last = graph.node[-1]
    assert last.input[0] == "d"
    assert list(last.attribute[0].ints) == [1, 2, 2, 1]  # H, W begins; H, W ends


def test_static_int8_refuses_ranges_calibrated_on_another_graph(tmp_path):
    from sktransfer._embedding.int8 import int8_file
    from sktransfer._embedding.runtime import _export

    _export(_SameNet().eval(), {"images": torch.randn(2, 3, 32, 32)},
            str(tmp_path / "net.onnx"))
    stale = json.dumps({"CLS": "TensorsData", "calibration_method": {
        "CLS": "CalibrationMethod", "value": "CalibrationMethod.MinMax"},
        "data": {"old/name": {"CLS": "TensorData", "lowest": 0, "highest": 1}}})
    with pytest.raises(ParameterError, match="another sktransfer version"):
        int8_file(str(tmp_path / "net.onnx"), ranges=stale, static=True)


@pytest.mark.slow
def test_image_int8_runs_fused_convolutions_and_exports_without_torch(tmp_path):
    import onnx

    X, y = load_photo_patches(n_per_class=8, size=64)
    X_test, _ = load_photo_patches(n_per_class=6, size=72, split="test")
    fp32 = PretrainedImageFeatures("efficientnet_lite0", cache=False).fit(X)
    int8 = PretrainedImageFeatures("efficientnet_lite0", runtime="onnx-int8",
                                   cache=False)
    model = make_pipeline(int8, StandardScaler(),
                          LogisticRegression(max_iter=2000)).fit(X, y)
    assert int8.runtime_ == "onnx-int8"
    graph = onnx.load(int8.runner_.path).graph
    producers = {out: node for node in graph.node for out in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 49 and not [n for n in graph.node if n.op_type == "Pad"]
    # every convolution reads a dequantized uint8 activation: one fused kernel
    for conv in convs:
        dq = producers[conv.input[0]]
        assert dq.op_type == "DequantizeLinear"
        zero_point = next(i for i in graph.initializer if i.name == dq.input[2])
        assert zero_point.data_type == onnx.TensorProto.UINT8
    e32, e8 = fp32.transform(X_test), int8.transform(X_test)
    cosine = np.sum(e32 * e8, 1) / np.linalg.norm(e32, axis=1) / np.linalg.norm(
        e8, axis=1)
    assert cosine.mean() > 0.9
    path = sktransfer.export(model, tmp_path / "int8.onnx", int8=True)
    labels, _ = _run_without_torch(tmp_path, path, X_test, "image")
    assert np.mean(labels == model.predict(X_test)) >= 0.9
