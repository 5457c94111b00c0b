"""Shared fixtures. Tests never reach a model hub: offline mode is forced."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SKTRANSFER_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sktransfer.cache import clear_memory_cache  # noqa: E402


@pytest.fixture
def photos():
    """A few real photos from scikit-image: colour, gray and RGBA."""
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee(),
            "camera": data.camera(), "logo": data.logo()}


@pytest.fixture(scope="module")
def blur():
    """Digits as a domain shift: (Xs, ys, Xt, yt), source = 900 original digits,
    target = the others blurred (sigma 1); pixels scaled to [0, 1]."""
    from scipy.ndimage import gaussian_filter
    from sklearn.datasets import load_digits

    digits = load_digits()
    idx = np.random.RandomState(0).permutation(len(digits.target))
    src, tgt = idx[:900], idx[900:]
    blurred = np.stack([gaussian_filter(im, 1.0) for im in digits.images[tgt]])
    Xs, Xt = digits.data[src] / 16, blurred.reshape(len(tgt), -1) / 16
    return Xs, digits.target[src], Xt, digits.target[tgt]


@pytest.fixture
def embedded_images(monkeypatch):
    """Counts the images ``PretrainedImageFeatures`` embeds (not read from the
    cache): ``embedded_images["images"]``."""
    from sktransfer import PretrainedImageFeatures

    seen = {"images": 0}
    original = PretrainedImageFeatures._embed_batch

    def counting(self, batch):
        seen["images"] += len(batch)
        return original(self, batch)

    monkeypatch.setattr(PretrainedImageFeatures, "_embed_batch", counting)
    return seen


@pytest.fixture(scope="module")
def dask_client(request, one_torch_thread):
    """A client of a local cluster for a module's tests: ``DASK_WORKERS`` (a
    module constant, default 1) worker processes of one thread each."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=getattr(request.module, "DASK_WORKERS", 1), threads_per_worker=1,
        processes=True, dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture
def data_free_checks():
    """``run(estimator)``: scikit-learn's checks that need no data. The standard
    checks silently skip estimators of images and texts; these still apply."""
    from sklearn.utils import estimator_checks as checks

    def run(estimator):
        for check in (checks.check_no_attributes_set_in_init,
                      checks.check_estimator_cloneable,
                      checks.check_estimator_repr,
                      checks.check_do_not_raise_errors_in_init_or_set_params,
                      checks.check_get_params_invariance,
                      checks.check_set_params):
            check(type(estimator).__name__, estimator)

    return run


@pytest.fixture
def scores_by_weights():
    """``run(make, train, test)``: ``{"DEFAULT": score, None: score}`` of
    ``make(weights)`` fitted on ``train = (X, y)`` and scored on ``test``, the
    pretrained network against the same one from (seeded) random weights."""
    import torch

    def run(make, train, test):
        scores = {}
        for weights in ("DEFAULT", None):
            torch.manual_seed(0)  # the random initialisation of weights=None
            scores[weights] = make(weights).fit(*train).score(*test)
        return scores

    return run


@pytest.fixture(scope="session", autouse=True)
def _onnx_exports_in_a_session_dir(tmp_path_factory):
    """ONNX exports go to one temporary directory per test session (shared by
    the tests, so each model is exported once), never to the user's cache."""
    previous = os.environ.get("SKTRANSFER_CACHE_DIR")
    os.environ["SKTRANSFER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("SKTRANSFER_CACHE_DIR", None)
    else:
        os.environ["SKTRANSFER_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module's tests (restored afterwards).

    On a shared 2-core machine, two competing threads are several times slower
    than one for the small training runs of the fine-tuning tests.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_memory_cache()
    yield
    clear_memory_cache()


@pytest.fixture
def small_images():
    """Eight small real RGB crops (fast to embed with a tiny network)."""
    from skimage import data

    photo = data.astronaut()
    return [np.ascontiguousarray(photo[i * 40:i * 40 + 48, i * 50:i * 50 + 64])
            for i in range(8)]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A folder holding a random 2-layer BERT (width 32, 64 positions) with the
    bundled MiniLM's tokenizer; skips when the bundled model is not installed."""
    from sktransfer.backbones import bundled_text_path

    if bundled_text_path() is None:
        pytest.skip("the bundled all-MiniLM-L6-v2 (its tokenizer) is not installed")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(bundled_text_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
