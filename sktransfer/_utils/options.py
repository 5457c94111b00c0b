"""The choices of the string-valued parameters, named once: the parameter
table (``params.py``) builds its constraints from them and the modules that
implement them read them (no import of scikit-learn or torch here)."""

__all__ = [
    "ADAPT_LOSS_NAMES",
    "IMAGE_AUGMENT_PRESETS",
    "IMAGE_POOLINGS",
    "KERNEL_NAMES",
    "REGRESSION_LOSS_NAMES",
    "RUNTIME_NAMES",
    "TEXT_POOLING_NAMES",
]

#: The choices of the string-valued parameters (the modules that implement
#: them read these names).
RUNTIME_NAMES = ("auto", "torch", "onnx", "onnx-int8")
IMAGE_POOLINGS = ("avg", "max", "avgmax")
TEXT_POOLING_NAMES = ("mean", "cls", "max")
IMAGE_AUGMENT_PRESETS = ("default", "light", "strong")
ADAPT_LOSS_NAMES = ("coral", "dann", "mmd")
REGRESSION_LOSS_NAMES = ("mse", "huber")
#: ``sklearn.metrics.pairwise_kernels`` metrics of the adaptation methods
#: (the first four take ``gamma``)
KERNEL_NAMES = ("rbf", "laplacian", "poly", "sigmoid", "linear", "cosine")
