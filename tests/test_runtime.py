"""Runtimes: torch and ONNX Runtime give the same embeddings; export cache; fallback.

ONNX exports are slow on a shared machine: the few tests that export share one
session-wide cache directory (see ``onnx_dir``).
"""

import os
import warnings

import numpy as np
import pytest
import torch

from sktransfer._embedding import runtime as _runtime
from sktransfer._embedding.runtime import (
    OnnxRunner,
    TorchRunner,
    make_runner,
    onnx_cache_dir,
)
from sktransfer.backbones import resolve_image_backbone
from sktransfer.exceptions import RuntimeFallbackWarning

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def onnx_dir():
    """The session's export directory (conftest), shared with the estimators."""
    return onnx_cache_dir()


class _Images(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, images):
        return self.module(images)


def _probe(n=2, size=224, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {"images": torch.randn(n, 3, size, size, generator=generator)}


def test_onnx_matches_torch_on_the_bundled_image_model(onnx_dir, monkeypatch):
    module = _Images(resolve_image_backbone("efficientnet_lite0").module.eval())
    runner = make_runner("onnx", module, _probe(), device="cpu", identity=("eff",),
                         cache_dir=onnx_dir)
    assert isinstance(runner, OnnxRunner)
    batch = _probe(5, seed=1)
    expected = TorchRunner(module, "cpu").run(batch)
    got = runner.run(batch)
    assert got.dtype == np.float32 and got.shape == (5, 1280)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # A second runner reuses the cached file: no second export.
    monkeypatch.setattr(_runtime, "_export", _fail)
    again = make_runner("auto", module, _probe(), device="cpu", identity=("eff",),
                        cache_dir=onnx_dir)
    assert isinstance(again, OnnxRunner) and again.path == runner.path
    assert os.path.dirname(runner.path) == onnx_dir


def _fail(*args, **kwargs):
    raise RuntimeError("this model cannot be exported")


def _tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten()).eval()


def test_export_failure_falls_back_to_torch_with_a_warning(onnx_dir, monkeypatch):
    monkeypatch.setattr(_runtime, "_export", _fail)
    with pytest.warns(RuntimeFallbackWarning, match="cannot be exported"):
        runner = make_runner("onnx", _Images(_tiny()), _probe(size=16), device="cpu",
                             identity=("tiny",), cache_dir=onnx_dir)
    assert isinstance(runner, TorchRunner)


class _BakesBatchSize(torch.nn.Module):
    """Traced, ``float(n)`` becomes a constant: the export is wrong elsewhere."""

    def forward(self, images):
        return images.mean(dim=(2, 3)) * float(images.shape[0])


def test_an_export_that_differs_falls_back_to_torch(onnx_dir):
    with pytest.warns(RuntimeFallbackWarning, match="differs from torch"):
        runner = make_runner("onnx", _BakesBatchSize(), _probe(size=8), device="cpu",
                             identity=("bakes",), cache_dir=onnx_dir)
    assert isinstance(runner, TorchRunner)


def test_auto_chooses_torch_on_cuda_and_for_unstable_identities(monkeypatch):
    module = _Images(_tiny())
    monkeypatch.setattr(_runtime, "_export", _fail)  # nothing may be exported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for device, identity in (("cuda", ("tiny",)), ("cpu", None)):
            runner = make_runner("auto", module, _probe(size=16), device=device,
                                 identity=identity)
            assert isinstance(runner, TorchRunner)
        runner = make_runner("torch", module, _probe(size=16), device="cpu",
                             identity=("tiny",))
        assert isinstance(runner, TorchRunner)
    monkeypatch.setattr(_runtime, "_has_ort", lambda: False)
    assert isinstance(make_runner("auto", module, _probe(size=16), device="cpu",
                                  identity=("tiny",)), TorchRunner)
    with pytest.raises(ImportError, match="pip install"):
        make_runner("onnx", module, _probe(size=16), device="cpu", identity=("t",))
    with pytest.raises(ValueError, match="runtime='tensorrt'"):
        make_runner("tensorrt", module, _probe(size=16), device="cpu", identity=None)


def test_cache_dir_and_key(monkeypatch, tmp_path):
    monkeypatch.setenv("SKTRANSFER_CACHE_DIR", str(tmp_path))
    assert onnx_cache_dir() == os.path.join(str(tmp_path), "onnx")
    assert onnx_cache_dir(tmp_path / "mine") == str(tmp_path / "mine")
    module, probe = _tiny(), _probe(size=16)
    key = _runtime.export_key(module, ("tiny",), probe)
    assert key == _runtime.export_key(module, ("tiny",), probe)
    assert key != _runtime.export_key(module, ("tiny", "max"), probe)
    assert key != _runtime.export_key(module, ("tiny",), _probe(size=32))
    with torch.no_grad():
        module[0].bias += 1  # other weights, other export
    assert key != _runtime.export_key(module, ("tiny",), probe)
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert key != _runtime.export_key(module, ("tiny",), probe)


def test_image_features_export_layer_and_pooling_and_pickle(onnx_dir):
    import pickle

    from skimage import data

    from sktransfer import PretrainedImageFeatures

    photos = [data.chelsea(), data.coffee(), data.astronaut()]
    # ONNX Runtime runs on the CPU (on a GPU, "onnx" warns and uses torch)
    params = {"model": "efficientnet_lite0", "layer": 4, "pooling": "avgmax",
              "cache": False, "device": "cpu"}
    onnx = PretrainedImageFeatures(runtime="onnx", **params).fit(photos)
    torch_ = PretrainedImageFeatures(runtime="torch", **params).fit(photos)
    assert (onnx.runtime_, torch_.runtime_) == ("onnx", "torch")
    expected = torch_.transform(photos)
    np.testing.assert_allclose(onnx.transform(photos), expected, atol=1e-4)
    restored = pickle.loads(pickle.dumps(onnx))  # the session is not pickled
    assert restored.runner_.name == "onnx"
    np.testing.assert_allclose(restored.transform(photos), expected, atol=1e-4)


def test_cli_runtime_and_exact_decode_flags(tmp_path, capsys):
    from PIL import Image

    from sktransfer import persist
    from sktransfer.cli import main
    from sktransfer.datasets import load_photo_patches

    X, y = load_photo_patches(4, 96, "train", classes=("brick", "coffee"))
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (tmp_path / "photos" / label).mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(image).resize((768, 768))
        big.save(tmp_path / "photos" / label / f"{i}.jpg", quality=90)
    model = tmp_path / "model.skt"
    assert main(["fit", str(tmp_path / "photos"), "--cv", "0", "--runtime", "torch",
                 "--out", str(model)]) == 0
    features = persist.load(model).steps[0][1]
    assert (features.runtime_, features.fast_decode) == ("torch", True)
    capsys.readouterr()
    outputs = []
    for flags in ([], ["--exact-decode", "--runtime", "torch"]):
        assert main(["predict", str(model), str(tmp_path / "photos"), *flags]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 8


def test_text_embeddings_export_pooling_and_normalisation_together():
    from sktransfer import PretrainedTextEmbeddings

    texts = ["a cat on a mat", "the stock market fell sharply today",
             "", "Transformers embed sentences into vectors of floats."]
    # ONNX Runtime runs on the CPU (on a GPU, "onnx" warns and uses torch)
    onnx = PretrainedTextEmbeddings(runtime="onnx", cache=False, device="cpu").fit(
        texts)
    torch_ = PretrainedTextEmbeddings(runtime="torch", cache=False, device="cpu").fit(
        texts)
    assert (onnx.runtime_, torch_.runtime_) == ("onnx", "torch")
    from sentence_transformers import SentenceTransformer

    from sktransfer.backbones import bundled_text_path

    reference = SentenceTransformer(bundled_text_path(), device="cpu")
    expected = reference.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(torch_.transform(texts), expected, atol=1e-5)
    got = onnx.transform(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_text_auto_runtime_is_torch_as_measured():
    # ONNX Runtime measured only ~1.1x faster for MiniLM (RESULTS.md O2): "auto" skips
    # the export for text; "onnx" must be asked for.
    from sktransfer import PretrainedTextEmbeddings

    texts = ["a cat on a mat", "the stock market fell sharply today"]
    assert PretrainedTextEmbeddings(cache=False).fit(texts).runtime_ == "torch"


def test_onnx_export_mode_switches_attention_to_eager_and_back():
    from transformers import BertConfig, BertModel

    from sktransfer.backbones import onnx_export_mode

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=24)
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.set_attn_implementation("sdpa")
    ids = torch.randint(0, 50, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[0, 4:] = 0
    wrapper = torch.nn.Sequential()
    wrapper.add_module("encoder", model)
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with onnx_export_mode(wrapper):
            assert model.config._attn_implementation == "eager"
            during = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert model.config._attn_implementation == "sdpa"  # restored
    torch.testing.assert_close(during[mask.bool()], before[mask.bool()],
                               rtol=1e-5, atol=1e-5)
