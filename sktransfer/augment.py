"""Train-time augmentation presets.

Images
------
``image_augmentation(augment, data_config, image_size=None)`` returns a
transform ``PIL image -> normalised float tensor (3, size, size)``. ``size`` is
``image_size`` or the backbone's input size; the normalisation (mean, std) and
the resize interpolation are those the weights were trained with
(``Backbone.data_config``). Presets:

- ``"default"``: random resized crop (scale 0.5-1), horizontal flip, rotation up
  to 10 degrees, colour jitter (brightness, contrast, saturation 0.2).
- ``"light"``: random resized crop (scale 0.8-1) and horizontal flip only; for
  small datasets of images whose framing matters.
- ``"strong"``: random resized crop (scale 0.25-1), horizontal flip, rotation up
  to 20 degrees, colour jitter 0.4 (hue 0.05), 10% grayscale and random erasing.
- ``None``: no augmentation, the eval preprocessing (resize, centre crop).

With ``keep_frame=True`` (what ``FineTunedClassifier`` asks for when ``y``
is multi-label) the ``"default"`` preset keeps the whole frame: the random
resized crop, which can cut a tagged part of the image out while the tag stays,
is replaced by the eval resize (to ``size / crop_pct``) and a random
``size`` crop of it, a shift of at most ``1 - crop_pct`` of the side (12.5%
for ``crop_pct`` 0.875); the flip, rotation and colour jitter stay.
- a callable: applied to the PIL image, followed by the eval preprocessing.

Decode size: with ``fast_decode=True`` JPEG files are decoded at a reduced DCT
scale chosen by ``sktransfer.data.decode_size`` from these transforms. For a
random resized crop to ``size`` with scale ``(a, 1)`` and ratios ``(3/4, 4/3)``
the smallest crop drawn from an image of shorter side ``S`` has a shorter side
of at least ``S * sqrt(a * 3/4)``; the file is decoded at
``S >= size / sqrt(a * 3/4)`` (366 px for ``"default"``, 290 for ``"light"``,
518 for ``"strong"`` at size 224), so no crop is ever upsampled from the draft
image. A callable preset gets the full-resolution image.

Texts: easy data augmentation (EDA)
-----------------------------------
``EDA`` (a callable ``text -> text``) and ``eda`` (``text -> list of copies``)
apply one of four word-level operations, after Wei & Zou (2019), to a text
split on whitespace. With ``n = max(1, round(rate * n_words))``:

- ``"insert"``: insert ``n`` words at random positions: synonyms of the text's
  words when ``synonyms`` has any, else words of ``vocabulary``, else words of
  the text itself;
- ``"delete"``: delete ``n`` distinct words, always keeping at least one;
- ``"swap"``: swap the words at two random positions, ``n`` times;
- ``"replace"``: replace ``n`` distinct words by a synonym (``synonyms`` maps a
  word to a list of synonyms, case-insensitively) or, for words without
  one, by a different word of ``vocabulary`` (of the text itself when there is
  neither vocabulary nor synonyms); only words with a candidate are
  replaced (fewer than ``n`` when fewer have one).

Each augmented copy applies one operation drawn at random from
``operations``. A text without words comes back unchanged; otherwise the result
is never empty. ``FineTunedTextClassifier(augment="eda")`` draws a fresh
copy of every training text at every epoch (one copy per text and epoch, the
replacement words taken from the training texts); prediction never augments.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torchvision.transforms import v2 as T

from sktransfer._utils.options import IMAGE_AUGMENT_PRESETS
from sktransfer.backbones import interpolation_mode, make_eval_transform
from sktransfer.exceptions import (
    InvalidInputTypeError,
    ParameterError,
    ParameterTypeError,
)

if TYPE_CHECKING:  # names used in annotations only
    from collections.abc import Callable
    from typing import Any

    import numpy as np

__all__ = ["EDA", "EDA_OPERATIONS", "IMAGE_PRESETS", "eda", "image_augmentation"]

IMAGE_PRESETS = IMAGE_AUGMENT_PRESETS  # declared with the parameter


def image_augmentation(
    augment: str | Callable[..., Any] | None,
    data_config: dict,
    image_size: int | None = None,
    keep_frame: bool = False,
) -> Callable[[Any], torch.Tensor]:
    """The training transform for ``augment`` (a preset name, None or a callable).

    Parameters
    ----------
    augment : {"default", "light", "strong"}, callable or None
        See the module docstring.
    data_config : dict
        ``input_size``, ``mean``, ``std``, ``interpolation`` (and ``crop_pct``)
        of the weights, as in ``Backbone.data_config``.
    image_size : int, default=None
        Output resolution; None keeps the backbone's input size.
    keep_frame : bool, default=False
        ``"default"`` only: shift instead of a random resized crop, so every
        part of the image stays in view (multi-label ``y``; module docstring).

    Returns
    -------
    callable
        PIL image -> float tensor of shape (3, size, size).
    """
    eval_transform = make_eval_transform(data_config, image_size)
    if augment is None:
        return eval_transform
    if callable(augment):
        return T.Compose([T.Lambda(augment), eval_transform])
    if augment not in IMAGE_PRESETS:
        raise ParameterError(
            f"augment={augment!r} is not an image augmentation: use one of "
            f"{list(IMAGE_PRESETS)}, None or a callable on PIL images"
        )
    size = image_size or data_config["input_size"][-1]
    return T.Compose(
        [
            T.ToImage(),
            *_preset(augment, size, interpolation_mode(data_config),
                     data_config.get("crop_pct", 0.875) if keep_frame else None),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean=list(data_config["mean"]), std=list(data_config["std"])),
            *([T.RandomErasing(p=0.25)] if augment == "strong" else []),
        ]
    )


def _preset(name: str, size: int, interpolation,
            frame_crop_pct: float | None = None) -> list:
    crop = {"default": (0.5, 1.0), "light": (0.8, 1.0), "strong": (0.25, 1.0)}[name]
    if name == "default" and frame_crop_pct is not None:  # keep the whole frame
        resize = int(round(size / frame_crop_pct))
        framing = [T.Resize(resize, interpolation=interpolation, antialias=True),
                   T.RandomCrop(size)]
    else:
        framing = [T.RandomResizedCrop(
            size, scale=crop, interpolation=interpolation, antialias=True)]
    steps = [*framing, T.RandomHorizontalFlip()]
    if name == "default":
        steps += [
            T.RandomRotation(10),
            T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    elif name == "strong":
        steps += [
            T.RandomRotation(20),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
            T.RandomGrayscale(p=0.1),
        ]
    return steps


# --- text: easy data augmentation ------------------------------------------------

EDA_OPERATIONS = ("insert", "delete", "swap", "replace")


class EDA:
    """Easy data augmentation of texts: a callable ``text -> text``.

    Parameters
    ----------
    rate : float, default=0.1
        Share of a text's words that an operation changes: ``max(1, round(rate
        * n_words))`` insertions, deletions, swaps or replacements.
    operations : sequence of str, default=("insert", "delete", "swap", "replace")
        Operations to draw from, one per augmented copy (module docstring).
    vocabulary : sequence of str, default=None
        Words to insert and to replace with (e.g. the training texts' words).
        None uses the text's own words, unless ``synonyms`` is given.
    synonyms : mapping of str to list of str, default=None
        ``{word: [synonyms]}``, preferred over ``vocabulary`` for the words it
        has (keys match case-insensitively).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws: the same seed gives the same sequence of copies.

    Examples
    --------
    >>> from sktransfer.augment import EDA
    >>> augment = EDA(rate=0.2, synonyms={"film": ["movie"]}, random_state=0)
    >>> copy = augment("a film about a dog")
    """

    def __init__(
        self,
        rate: float = 0.1,
        operations: Sequence[str] = EDA_OPERATIONS,
        vocabulary: Sequence[str] | None = None,
        synonyms: Mapping[str, Sequence[str]] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ):
        _check_eda(rate, operations, synonyms)
        self.rate = rate
        self.operations = tuple(operations)
        self.vocabulary = None if vocabulary is None else sorted(set(vocabulary))
        self.synonyms = {
            word.lower(): list(words) for word, words in (synonyms or {}).items()
        }
        self.random_state = random_state
        self._rng = random.Random(_seed(random_state))

    def __call__(self, text: str, random_state=None) -> str:
        """One augmented copy of ``text`` (``random_state`` seeds this call)."""
        if not isinstance(text, str):
            raise InvalidInputTypeError(
                f"EDA augments str texts, got {type(text).__name__}"
            )
        rng = self._rng if random_state is None else random.Random(_seed(random_state))
        words = text.split()
        if not words:
            return text
        operation = rng.choice(self.operations)
        n = max(1, round(self.rate * len(words)))
        return " ".join(getattr(self, "_" + operation)(words, n, rng))

    def _candidates(self, word: str, words: list[str]) -> list[str]:
        found = self.synonyms.get(word.lower())
        if found:
            return found
        pool: Sequence[str]
        if self.vocabulary is not None:
            pool = self.vocabulary
        else:  # with a synonym map, only synonyms; with neither, the text's words
            pool = () if self.synonyms else words
        return [w for w in pool if w != word]

    def _insert(self, words, n, rng):
        with_synonyms = [w for w in words if w.lower() in self.synonyms]
        for _ in range(n):
            if with_synonyms:
                new = rng.choice(self._candidates(rng.choice(with_synonyms), words))
            else:
                new = rng.choice(self.vocabulary or words)
            words.insert(rng.randint(0, len(words)), new)
        return words

    def _delete(self, words, n, rng):
        drop = set(rng.sample(range(len(words)), min(n, len(words) - 1)))
        return [w for i, w in enumerate(words) if i not in drop]

    def _swap(self, words, n, rng):
        if len(words) < 2:
            return words
        for _ in range(n):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        return words

    def _replace(self, words, n, rng):
        original = list(words)
        replaceable = [i for i, w in enumerate(words) if self._candidates(w, original)]
        for i in rng.sample(replaceable, min(n, len(replaceable))):
            words[i] = rng.choice(self._candidates(words[i], original))
        return words

    def __repr__(self):
        return (
            f"EDA(rate={self.rate}, operations={self.operations}, "
            f"vocabulary={'None' if self.vocabulary is None else '[...]'}, "
            f"synonyms={'{...}' if self.synonyms else None})"
        )


def eda(
    text: str,
    rate: float = 0.1,
    n_aug: int = 4,
    operations: Sequence[str] = EDA_OPERATIONS,
    vocabulary: Sequence[str] | None = None,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> list[str]:
    """``n_aug`` augmented copies of ``text`` by easy data augmentation.

    Parameters
    ----------
    text : str
    rate, operations, vocabulary, synonyms, random_state
        As in ``EDA``.
    n_aug : int, default=4
        Number of copies; each applies one operation drawn from
        ``operations``.

    Returns
    -------
    list of str
        The copies (never empty strings unless ``text`` has no word).

    Examples
    --------
    >>> from sktransfer.augment import eda
    >>> eda("the cat sat on the mat", n_aug=2, operations=("delete",), random_state=0)
    ['the cat sat the mat', 'the cat on the mat']
    """
    if isinstance(n_aug, bool) or not isinstance(n_aug, int) or n_aug < 1:
        raise ParameterError(f"n_aug must be an int >= 1, got {n_aug!r}")
    augmenter = EDA(rate, operations, vocabulary, synonyms, random_state)
    return [augmenter(text) for _ in range(n_aug)]


def _check_eda(rate, operations, synonyms) -> None:
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not (0 < rate <= 1)
    ):
        raise ParameterError(f"rate must be a float in (0, 1], got {rate!r}")
    if isinstance(operations, str):
        raise ParameterTypeError(
            f"operations must be a sequence of names such as ('delete',), got "
            f"the string {operations!r}"
        )
    unknown = [op for op in operations if op not in EDA_OPERATIONS]
    if unknown or not operations:
        raise ParameterError(
            f"unknown EDA operations {unknown}: use a non-empty subset of "
            f"{list(EDA_OPERATIONS)}"
        )
    if synonyms is not None and not isinstance(synonyms, Mapping):
        raise ParameterTypeError(
            f"synonyms must be a mapping {{word: [synonyms]}}, got "
            f"{type(synonyms).__name__}"
        )


def _seed(random_state):
    """An int (or None) for ``random.Random`` from an sklearn-style random_state."""
    if random_state is None or isinstance(random_state, int):
        return random_state
    return int(random_state.randint(2**31 - 1))
