"""The fitted attributes every fine-tuning estimator has, documented once
(their parameters are in ``sktransfer._utils.params.PARAMETERS``)."""

from __future__ import annotations

__all__ = ["ATTRIBUTES"]

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
