"""sktransfer: transfer learning with pretrained networks, the scikit-learn way.

Public names are imported lazily so that ``import sktransfer`` stays cheap and
never touches torch, a model hub or the network.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "FineTunedClassifier": "sktransfer.finetune",
    "FineTunedRegressor": "sktransfer.finetune",
    "FineTunedTextClassifier": "sktransfer.finetune",
    "FineTunedTextRegressor": "sktransfer.finetune",
    "PretrainedImageFeatures": "sktransfer.image",
    "PretrainedTextEmbeddings": "sktransfer.text",
    "export": "sktransfer.export",
    "list_models": "sktransfer.backbones",
    "load": "sktransfer.persist",
    "save": "sktransfer.persist",
    # few labels or none (issue 21)
    "FewShotTextClassifier": "sktransfer.fewshot",
    "ZeroShotTextClassifier": "sktransfer.fewshot",
}

__all__ = [
    "FewShotTextClassifier",
    "FineTunedClassifier",
    "FineTunedRegressor",
    "FineTunedTextClassifier",
    "FineTunedTextRegressor",
    "PretrainedImageFeatures",
    "PretrainedTextEmbeddings",
    "ZeroShotTextClassifier",
    "__version__",
    "export",
    "list_models",
    "load",
    "save",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sktransfer' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
