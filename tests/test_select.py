"""sktransfer.select: LogME, the ranking, the shared forward pass, bad input."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer.datasets import load_photo_patches
from sktransfer.exceptions import InvalidInputError, ParameterError
from sktransfer.select import logme, rank_models

TINY = {"model": "mobilenet_v3_small", "weights": None, "runtime": "torch"}


def _direct_evidence(F, t, alpha, beta):
    """log N(t | 0, I / beta + F F^T / alpha) / n, computed the slow way."""
    n = len(F)
    C = np.eye(n) / beta + F @ F.T / alpha
    _, log_det = np.linalg.slogdet(C)
    return -(t @ np.linalg.solve(C, t) + log_det + n * np.log(2 * np.pi)) / 2 / n


def test_logme_is_the_maximised_evidence_of_a_linear_model():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(60, 8))
    y = F @ rng.normal(size=8) + rng.normal(scale=0.5, size=60)
    t = (y - y.mean()) / y.std()
    grid = [_direct_evidence(F, t, a, b) for a in np.logspace(-2, 2, 41)
            for b in np.logspace(-2, 2, 41)]
    assert logme(F, y) == pytest.approx(max(grid), abs=2e-3)
    assert logme(F, y) >= max(grid) - 1e-6


def test_logme_prefers_informative_features_over_noise():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=X.shape)
    assert logme(X, y) > logme(noise, y) + 0.3
    # wider than the sample count: the SVD path with d > n
    assert logme(X[:40], y[:40]) > logme(noise[:40], y[:40])
    target = X[:, 20] + rng.normal(size=len(X))  # a float y: regression
    assert logme(X, target) > logme(noise, target) + 1.0


def test_logme_bad_input():
    with pytest.raises(InvalidInputError, match="single class"):
        logme(np.ones((4, 2)), ["a"] * 4)
    with pytest.raises(InvalidInputError, match="3 rows but the features 4"):
        logme(np.ones((4, 2)), [0, 1, 0])
    with pytest.raises(InvalidInputError, match="non-finite"):
        logme(np.full((2, 2), np.nan), [0, 1])


def _count_forwards(module, rows):
    """Forward passes of ``module`` over batches of ``rows`` samples (``fit``
    also runs a one-sample probe to learn a layer's width)."""
    calls = []

    def count(_module, args, kwargs):
        batch = args[0] if args else kwargs["input_ids"]
        if len(batch) == rows:
            calls.append(1)

    module.register_forward_pre_hook(count, with_kwargs=True)
    return calls


def test_layers_of_one_network_share_one_forward_pass(small_images):
    y = np.repeat(["a", "b"], 4)
    module = PretrainedImageFeatures(**TINY).fit(small_images).backbone_.module
    calls = _count_forwards(module, 8)  # the loaded network is shared by clones
    candidates = [PretrainedImageFeatures(**TINY, layer=k, pooling=p)
                  for k, p in ((2, "avg"), (5, "avg"), (5, "max"), (None, "avg"))]
    table = rank_models(small_images, y, candidates, cv=2)
    assert len(calls) == 1  # one batch, one forward for four candidates
    assert sorted(table.index) == [0, 1, 2, 3]
    assert list(table.columns) == ["candidate", "score", "seconds", "logme", "probe"]
    assert table["score"].is_monotonic_decreasing
    assert table.loc[2, "candidate"] == "mobilenet_v3_small weights=None layer=5 " \
                                        "pooling=max"
    # each candidate's features are in its cache, and equal its own transform
    for i, candidate in enumerate(candidates):
        cached = candidate.fit(small_images).transform(small_images)
        assert len(calls) == 1 + i  # from the cache
        fresh = candidate.set_params(cache=False).fit(small_images)
        np.testing.assert_allclose(cached, fresh.transform(small_images), atol=1e-5)
        assert len(calls) == 2 + i


def test_text_layers_share_one_pass_and_pool_as_documented(tiny_bert):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["a cat sat on the mat", "dogs bark", "the stock market fell today",
             "rain again", "what a goal in the final minute", "cheap flights"]
    spec = f"hf/{tiny_bert}"
    encoder = PretrainedTextEmbeddings(spec).fit(texts).backbone_.module
    calls = _count_forwards(encoder, 6)
    candidates = [PretrainedTextEmbeddings(spec, layer=k, pooling=p, normalize=False)
                  for k, p in ((0, "mean"), (1, "cls"), (2, "max"), (None, "mean"))]
    rank_models(texts, [0, 1, 0, 1, 0, 1], candidates, cv=2)
    one = len(calls)
    PretrainedTextEmbeddings(spec, cache=False).fit(texts).transform(texts)
    assert len(calls) == 2 * one  # the four candidates cost one candidate's pass
    # layer k: the output of encoder layer k (0: the embeddings), pooled
    tokenizer, model = AutoTokenizer.from_pretrained(tiny_bert), \
        AutoModel.from_pretrained(tiny_bert)
    batch = tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states
    got = [c.fit(texts).transform(texts[:1])[0] for c in candidates]
    np.testing.assert_allclose(got[0], states[0][0].mean(0), atol=1e-5)
    np.testing.assert_allclose(got[1], states[1][0, 0], atol=1e-5)
    np.testing.assert_allclose(got[2], states[2][0].amax(0), atol=1e-5)
    np.testing.assert_allclose(got[3], states[2][0].mean(0), atol=1e-5)
    keys = {c.model_key_ for c in candidates}
    assert len(keys) == 4  # the cache is keyed by layer and pooling


def test_text_layer_out_of_range_names_the_blocks(tiny_bert):
    with pytest.raises(ValueError, match=r"out of range .* 3 blocks"):
        PretrainedTextEmbeddings(f"hf/{tiny_bert}", layer=3).fit(["a text"])


def test_regression_target_ranks_with_r2(small_images):
    y = np.linspace(0.0, 1.0, 8)
    table = rank_models(small_images, y, [PretrainedImageFeatures(**TINY)],
                        metric="probe", cv=2)
    assert table.loc[0, "score"] == table.loc[0, "probe"] <= 1.0


def test_bad_input_is_named(small_images):
    y = np.repeat([0, 1], 4)
    with pytest.raises(ParameterError, match="candidates is empty"):
        rank_models(small_images, y, [])
    with pytest.raises(ParameterError, match=r"candidate 1 \(PretrainedTextEmb"):
        rank_models(small_images, y, [PretrainedImageFeatures(**TINY),
                                      PretrainedTextEmbeddings()])
    with pytest.raises(ParameterError, match=r"candidate 0 .* image model, but X "
                                             r"holds texts"):
        rank_models(["a text", "another"], [0, 1], ["efficientnet_lite0"])
    with pytest.raises(InvalidInputError, match="single class"):
        rank_models(small_images, np.zeros(8, int), [PretrainedImageFeatures(**TINY)])
    with pytest.raises(InvalidInputError, match="y has 3 values but X 8"):
        rank_models(small_images, [0, 1, 0], [PretrainedImageFeatures(**TINY)])
    with pytest.raises(ParameterError, match=r"candidate 0: \['layers'\] are not"):
        rank_models(small_images, y, [{"layers": 3}])
    with pytest.raises(InvalidInputError, match="class 1 has a single sample: .* "
                                                "metric='logme'"):
        rank_models(small_images, [0] * 7 + [1], [PretrainedImageFeatures(**TINY)])
    with pytest.raises(InvalidInputError, match=r"class 'b' has 3 samples, fewer "
                                                r"than the probe's cv=5 folds: pass "
                                                r"cv=3 or less \(CLI: --cv 3\)"):
        rank_models(small_images, ["a"] * 5 + ["b"] * 3,
                    [PretrainedImageFeatures(**TINY)], metric="probe")
    with pytest.raises(ParameterError, match="metric='best' is not one of"):
        rank_models(small_images, y, [PretrainedImageFeatures(**TINY)], metric="best")


@pytest.mark.slow
def test_pretrained_ranks_above_random_weights_on_photo_patches():
    X, y = load_photo_patches(n_per_class=8, size=64)
    candidates = [PretrainedImageFeatures("efficientnet_lite0", weights=None),
                  PretrainedImageFeatures("efficientnet_lite0"),
                  PretrainedImageFeatures("efficientnet_lite0", layer=1)]
    table = rank_models(X, y, candidates, cv=4)
    assert table.index[0] == 1
    assert table.loc[1, "logme"] > table.loc[0, "logme"] + 0.3
    assert table.loc[1, "probe"] >= 0.9 > table.loc[0, "probe"] + 0.15


@pytest.mark.slow
def test_minilm_last_layer_mean_is_its_sentence_embedding():
    texts = ["A man is playing a guitar.", "Stocks fell sharply on Monday."]
    own = PretrainedTextEmbeddings().fit(texts).transform(texts)
    last = PretrainedTextEmbeddings(layer=6).fit(texts).transform(texts)
    first = PretrainedTextEmbeddings(layer=1, pooling="cls").fit(texts)
    np.testing.assert_allclose(own, last, atol=1e-5)
    assert np.abs(first.transform(texts) - own).max() > 0.05


def test_cli_rank_options_need_rank(capsys):
    from sktransfer.cli import main

    assert main(["models", "--layers"]) == 2
    assert "--layers only apply with --rank DATA" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_ranks_the_offline_models_of_an_image_folder(tmp_path, capsys):
    from PIL import Image

    from sktransfer.cli import main

    X, y = load_photo_patches(n_per_class=6, size=64,
                              classes=("brick", "grass", "coffee"))
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (tmp_path / label).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / label / f"{i}.png")
    assert main(["models", "--rank", str(tmp_path), "--metric", "logme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["candidate", "score", "seconds", "logme"]
    assert [line.split()[1] for line in lines[1:]] == [
        "efficientnet_lite0", "efficientnet_lite0"]
    assert "weights=None" in lines[2]  # random weights rank last


def test_text_layer_and_pooling_export_to_onnx(tiny_bert):
    pytest.importorskip("onnxruntime")
    texts = ["a cat sat on the mat", "dogs bark loudly at night", "rain"]
    params = {"model": f"hf/{tiny_bert}", "layer": 1, "pooling": "cls",
              "cache": False}
    onnx = PretrainedTextEmbeddings(**params, runtime="onnx").fit(texts)
    torch_ = PretrainedTextEmbeddings(**params, runtime="torch").fit(texts)
    assert onnx.runtime_ == "onnx"
    np.testing.assert_allclose(onnx.transform(texts), torch_.transform(texts),
                               atol=1e-5)


# --- issue 32: modality without looking at files; specs that are not models --------

def test_texts_that_name_files_are_texts(tiny_bert, tmp_path, monkeypatch):
    from sktransfer.select._shared_pass import modality_of

    monkeypatch.chdir(tmp_path)
    texts = ["notes.txt", "setup.py", "README", "todo.md"]
    for name in texts:  # every text names an existing file
        (tmp_path / name).write_text("x")
    assert modality_of(texts) == "text"
    assert modality_of(["a.jpg", "b.PNG", "https://x.org/c.webp?size=2"]) == "image"
    assert modality_of(["a.jpg", "a text"]) == "text"
    assert modality_of(texts, "image") == "image"
    with pytest.raises(ParameterError, match="modality='audio'"):
        modality_of(texts, "audio")
    table = rank_models(texts, ["a", "b", "a", "b"],
                        [PretrainedTextEmbeddings(f"hf/{tiny_bert}")],
                        metric="logme")
    assert len(table) == 1 and np.isfinite(table["logme"]).all()


def test_an_hf_spec_naming_a_folder_without_a_model_is_a_spec_error(tmp_path,
                                                                    monkeypatch):
    from sktransfer.exceptions import ModelNotAvailableError

    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(ModelNotAvailableError,
                       match=r"'../../empty': the folder .*empty' holds no model"):
        rank_models(["a text", "another"], ["a", "b"], ["hf/../../empty"],
                    metric="logme")


def test_cli_rank_with_few_samples_a_class_says_what_to_pass(tmp_path, capsys):
    from sktransfer.cli import main

    data = tmp_path / "t.csv"
    data.write_text("text,y\nhello there,a\ngood bye,b\n")
    common = ["models", "--rank", str(data), "--column", "text", "--target", "y"]
    assert main([*common, "--metric", "probe"]) == 2
    error = capsys.readouterr().err
    assert "single sample" in error and "--metric logme" in error
    assert "Traceback" not in error
    data.write_text("text,y\n" + "".join(f"text {i},{'ab'[i % 2]}\n"
                                         for i in range(6)))
    assert main([*common, "--metric", "probe"]) == 2
    assert "(CLI: --cv 3)" in capsys.readouterr().err
    assert main(["models", "--cv", "3"]) == 2
    assert "--cv only apply with --rank" in capsys.readouterr().err
