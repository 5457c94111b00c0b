"""A text ``Backbone`` as plain files and back, running no code from them.

``save_text_backbone`` writes the transformers config and tokenizer files of
the encoder and returns a JSON description of everything after it: the
sentence-transformers post-encoder stack (``Pooling``, ``Dense`` with an
activation from a fixed list, ``Normalize``) or plain mean pooling, the final
normalisation flag and the tokenizer options (lower-casing, token limit).
``load_text_backbone`` rebuilds the same network from both, with random
weights: the caller loads the saved weights into it (the ``Dense`` weights are
part of ``backbone.module``'s state dict). Config files asking for remote code
(``auto_map``) are refused; anything the description does not allow is too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from sktransfer.backbones._text import PooledEncoder, Tokenize, _text_backbone
from sktransfer.exceptions import ModelFileError

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from sktransfer.backbones._base import Backbone

__all__ = ["TEXT_BACKBONE_FILES", "load_text_backbone", "save_text_backbone"]

#: Every file name ``save_text_backbone`` may write (config and tokenizer).
TEXT_BACKBONE_FILES = frozenset({
    "config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json",
    "merges.txt", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
})
# Dense activations rebuilt by name: parameter-free torch modules only.
ACTIVATIONS = ("GELU", "Identity", "ReLU", "SiLU", "Sigmoid", "Tanh")
# The sentence-transformers modules allowed after the encoder: their settings,
# each a JSON value of the given type (Dense's activation is listed apart).
_MAX_SIZE = 1 << 20  # widths and token limits read back are at most this
_POST_SETTINGS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "Pooling": {"embedding_dimension": int, "pooling_mode": (str, list),
                "include_prompt": bool},
    "Dense": {"in_features": int, "out_features": int, "bias": bool,
              "module_input_name": str, "module_output_name": str,
              "use_residual": bool},
    "Normalize": {"module_input_name": str, "module_output_name": str},
}


def _post_classes() -> dict[str, type]:
    from sentence_transformers.sentence_transformer import modules

    return {name: getattr(modules, name) for name in _POST_SETTINGS}


# --- save -----------------------------------------------------------------------

def save_text_backbone(backbone: Backbone, folder: Path) -> dict[str, Any]:
    """Write ``backbone``'s encoder config and tokenizer files into ``folder``.

    Parameters
    ----------
    backbone : Backbone
        A transformers text backbone (``"hf/..."`` or sentence-transformers).
    folder : Path
        Created; it must not exist.

    Returns
    -------
    dict
        JSON-serialisable description of what follows the encoder, for
        ``load_text_backbone``. The weights are not written.

    Raises
    ------
    ModelFileError
        Something cannot be rebuilt without running code: word vectors, a
        module after the encoder other than ``Pooling`` / ``Dense`` /
        ``Normalize``, an activation outside ``ACTIVATIONS``, a tokenizer that
        writes other files.
    """
    from transformers import PreTrainedModel

    module = backbone.module
    encoder = getattr(module, "encoder", None)
    tokenize = backbone.preprocess
    if not (isinstance(module, PooledEncoder) and isinstance(tokenize, Tokenize)
            and isinstance(encoder, PreTrainedModel)):
        raise ModelFileError(
            f"the text model {backbone.name!r} ({backbone.data_config.get('kind')}) "
            f"cannot be saved by sktransfer.save: it needs a transformers encoder "
            f"and tokenizer (a sentence-transformers model or 'hf/...')")
    post = None if module.post is None else [_describe_post(m) for m in module.post]
    folder.mkdir()
    encoder.config.save_pretrained(folder)
    tokenize.tokenizer.save_pretrained(folder)
    odd = sorted(p.name for p in folder.iterdir() if p.name not in TEXT_BACKBONE_FILES)
    if odd:
        raise ModelFileError(f"the tokenizer writes files sktransfer.save does not "
                             f"store safely: {odd}")
    return {"name": backbone.name, "kind": backbone.data_config.get("kind"),
            "post": post, "normalize": bool(module.normalize),
            "lowercase": bool(tokenize.lowercase),
            "max_length": tokenize.default_length,
            "out_features": backbone.out_features}


def _describe_post(module: nn.Module) -> dict[str, Any]:
    kind = type(module).__name__
    classes = _post_classes()
    if type(module) is not classes.get(kind):
        raise ModelFileError(
            f"the sentence-transformers module {type(module).__module__}."
            f"{type(module).__qualname__} cannot be saved by sktransfer.save: "
            f"after the encoder it supports {sorted(_POST_SETTINGS)} only (use "
            f"pickle/joblib for this model)")
    entry: dict[str, Any] = {"type": kind}
    for key in _POST_SETTINGS[kind]:
        value = getattr(module, key, None)
        entry[key] = list(value) if isinstance(value, tuple) else value
    if kind == "Dense":
        entry["activation"] = _activation_name(module.activation_function)
    _check_post(entry)
    return entry


def _activation_name(activation: object) -> str:
    name = type(activation).__name__
    if name in ACTIVATIONS and type(activation) is getattr(nn, name) and \
            repr(activation) == repr(getattr(nn, name)()):
        return name
    raise ModelFileError(
        f"the Dense activation {activation!r} cannot be saved by sktransfer.save: "
        f"supported are {list(ACTIVATIONS)} with their default settings")


# --- load -----------------------------------------------------------------------

def load_text_backbone(
    folder: Path,
    description: dict[str, Any],
    check_parameters: Callable[[int, str], None] | None = None,
) -> Backbone:
    """Rebuild a text backbone from ``save_text_backbone``'s folder and description.

    No code from the files runs and nothing is downloaded: the encoder is
    built from its config with random weights (``auto_map`` refused, only
    transformers' own architectures), the tokenizer from its files, the
    modules after the encoder from the description's allow-listed settings.

    Parameters
    ----------
    folder : Path
        The folder ``save_text_backbone`` wrote.
    description : dict
        What ``save_text_backbone`` returned.
    check_parameters : callable, default=None
        ``check_parameters(count, what)`` is called with the network's
        parameter count, estimated on the meta device, before anything is
        built; it raises to refuse (``sktransfer.load`` checks it against
        ``max_parameters`` and against the values the weights file holds).

    Returns
    -------
    Backbone
        In eval mode, on the CPU, with random weights.

    Raises
    ------
    ModelFileError
        The files or the description ask for anything not allowed.
    """
    if not isinstance(description, dict) or "post" not in description:
        raise ModelFileError("the text model has no description of its pooling "
                             "(written by an older sktransfer?): fit and save it "
                             "again")
    post = description["post"]
    if post is not None:
        if not isinstance(post, list) or not post or not isinstance(
                post[0], dict) or post[0].get("type") != "Pooling":
            raise ModelFileError(f"the pooling description {post!r} is not a list "
                                 f"that starts with a Pooling module")
        for entry in post:
            _check_post(entry)
    encoder, tokenizer = _encoder_and_tokenizer(folder, post, check_parameters)
    if post is not None:
        post = [_build_post(entry) for entry in post]
    settings = {key: _setting(description, key, kind) for key, kind in
                (("normalize", bool), ("lowercase", bool), ("max_length", int),
                 ("out_features", int), ("name", str), ("kind", str))}
    module = PooledEncoder(encoder, post, settings["normalize"])
    tokenize = Tokenize(tokenizer, settings["max_length"], settings["lowercase"])
    return _text_backbone(module, tokenize, settings["name"], settings["kind"],
                          settings["out_features"])


def _encoder_and_tokenizer(folder: Path, post, check_parameters):
    from transformers import AutoConfig, AutoModel

    configs = {}
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        configs[name] = _read_json(path)
        if not isinstance(configs[name], dict):
            raise ModelFileError(f"{path.parent.name}/{path.name} is not a JSON "
                                 f"object")
        if "auto_map" in configs[name]:
            raise ModelFileError(f"{path.parent.name}/{path.name} asks for code "
                                 f"from a model hub (auto_map): refused")
    config_json = configs.get("config.json", {})
    model_type = config_json.get("model_type")
    if model_type not in ENCODER_TYPES:
        raise ModelFileError(f"encoder type {model_type!r} is not one of the text "
                             f"encoders sktransfer loads: {list(ENCODER_TYPES)}")
    for key in ("attn_implementation", "_attn_implementation"):
        if config_json.get(key) not in (None, "eager", "sdpa"):
            raise ModelFileError(f"config.json asks for {key}="
                                 f"{config_json.get(key)!r}: only 'eager' and "
                                 f"'sdpa' are loaded")
    _check_tokenizer_file(folder)
    options = dict(local_files_only=True, trust_remote_code=False)
    config = AutoConfig.from_pretrained(folder, **options)
    if check_parameters is not None:
        count = _meta_parameter_count(config) + sum(
            e["in_features"] * e["out_features"] + e["out_features"] * e["bias"]
            for e in post or () if e["type"] == "Dense")
        check_parameters(count, f"the text encoder {model_type!r}")
    tokenizer = _tokenizer(folder, options)
    vocabulary = getattr(config, "vocab_size", None)
    if type(vocabulary) is int and len(tokenizer) > vocabulary:
        raise ModelFileError(f"the tokenizer has {len(tokenizer)} tokens but the "
                             f"encoder's vocabulary {vocabulary} rows: the files "
                             f"do not belong together")
    encoder = AutoModel.from_config(config, trust_remote_code=False).eval()
    return encoder, tokenizer


#: The tokenizer models (tokenizer.json's ``model.type``) loaded.
TOKENIZER_MODELS = ("BPE", "Unigram", "WordLevel", "WordPiece")
#: The regular expressions a tokenizer.json may hold (normalizers and
#: pre-tokenizers of the encoder families above): any other could take
#: unbounded time or make the Rust tokenizer panic on some text.
TOKENIZER_PATTERNS = frozenset({
    " {2,}",  # XLM-R, CamemBERT: collapse runs of spaces
    # GPT-2's split (byte-level BPE)
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
    r"|\s+(?!\S)|\s+",
})


def _check_tokenizer_file(folder: Path) -> None:
    """The tokenizer is built from its tokenizer.json only (never from a
    fallback that a missing file would select), of a known model type, with
    no regular expression outside ``TOKENIZER_PATTERNS``."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelFileError(f"{folder.name}/ has no tokenizer.json: the text "
                             f"model's tokenizer cannot be rebuilt as it was "
                             f"saved (sktransfer.save always stores it)")
    data = _read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    kind = model.get("type") if isinstance(model, dict) else None
    if kind not in TOKENIZER_MODELS:
        raise ModelFileError(f"tokenizer.json's model type {kind!r} is not one of "
                             f"{list(TOKENIZER_MODELS)}")
    stack = [data.get(key) for key in ("normalizer", "pre_tokenizer",
                                       "post_processor", "decoder")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            pattern = node.get("Regex")
            if pattern is not None and pattern not in TOKENIZER_PATTERNS:
                raise ModelFileError(
                    f"tokenizer.json holds the regular expression "
                    f"{str(pattern)[:80]!r}, not one of the patterns of the text "
                    f"encoders sktransfer loads (a crafted pattern can hang or "
                    f"crash the tokenizer)")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _tokenizer(folder: Path, options: dict):
    """The tokenizer from its files; whatever the Rust tokenizer raises (a
    bare ``Exception``, a ``PanicException`` that is a ``BaseException``)
    becomes a ``ModelFileError``, and it must tokenize a probe text."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **options)
        tokenizer(["a probe, 12 words: ça va?  Yes."], truncation=True,
                  max_length=16)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit,
                            ModelFileError)):
            raise
        raise ModelFileError(f"the tokenizer files cannot be loaded "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return tokenizer


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ModelFileError(f"{path.parent.name}/{path.name} is not valid JSON "
                             f"({reason})") from None


#: The transformers encoder families ``load_text_backbone`` builds.
ENCODER_TYPES = ("albert", "bert", "camembert", "deberta", "deberta-v2",
                 "distilbert", "electra", "ernie", "mobilebert", "modernbert",
                 "mpnet", "roberta", "xlm-roberta")


def _meta_parameter_count(config) -> int:
    """The encoder's parameters, built on the meta device (nothing allocated)."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        encoder = AutoModel.from_config(config, trust_remote_code=False)
    return sum(p.numel() for p in encoder.parameters())


def _build_post(entry: object) -> nn.Module:
    _check_post(entry)
    assert isinstance(entry, dict)  # checked above
    settings = {key: entry[key] for key in _POST_SETTINGS[entry["type"]]}
    if entry["type"] == "Dense":
        settings["activation_function"] = getattr(nn, entry["activation"])()
    if entry["type"] == "Pooling" and isinstance(settings["pooling_mode"], list):
        settings["pooling_mode"] = tuple(settings["pooling_mode"])
    return _post_classes()[entry["type"]](**settings)


def _check_post(entry: object) -> None:
    """``entry`` describes an allowed module with settings of allowed types."""
    kind = entry.get("type") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or kind not in _POST_SETTINGS:
        raise ModelFileError(f"the module after the encoder {entry!r} is not one of "
                             f"{sorted(_POST_SETTINGS)}")
    expected = {"type", *_POST_SETTINGS[kind]} | ({"activation"} if kind == "Dense"
                                                   else set())
    if set(entry) != expected:
        raise ModelFileError(f"the {kind} settings {sorted(entry)} are not "
                             f"{sorted(expected)}")
    for key, types in _POST_SETTINGS[kind].items():
        _setting(entry, key, types)
    modes = entry.get("pooling_mode", [])
    if not all(isinstance(m, str) for m in (modes if isinstance(modes, list) else [])):
        raise ModelFileError(f"the pooling modes {modes!r} are not names")
    if kind == "Dense" and entry["activation"] not in ACTIVATIONS:
        raise ModelFileError(f"the Dense activation {entry['activation']!r} is not "
                             f"one of {list(ACTIVATIONS)}")


def _setting(entry: dict, key: str, types: type | tuple[type, ...]) -> Any:
    value = entry.get(key)
    exact = types if isinstance(types, tuple) else (types,)
    if type(value) not in exact:  # bool is not an int here
        raise ModelFileError(f"the text model setting {key}={value!r} is not a "
                             f"{' or '.join(t.__name__ for t in exact)}")
    if type(value) is int and not 1 <= value <= _MAX_SIZE:  # every int is a size
        raise ModelFileError(f"the text model setting {key}={value!r} is not a size "
                             f"between 1 and {_MAX_SIZE}")
    return value
