"""The embedding engine behind the frozen transformers: the embedder base
(``embedder``: fit / transform / cache / pickling, the shared model) and the
runtimes that run a network (``runtime``: torch, ONNX Runtime). Private: the
public classes are ``sktransfer.image`` / ``sktransfer.text``."""
