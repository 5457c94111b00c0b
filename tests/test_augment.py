"""Text augmentation: EDA operations one by one, seeds, edge cases, errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sktransfer.augment import EDA, EDA_OPERATIONS, eda

TEXT = "the quick brown fox jumps over the lazy dog near the river bank"  # 13 words
VOCAB = ["alpha", "beta", "gamma", "delta"]


def copies(operation, text=TEXT, **params):
    params = {"rate": 0.25, "n_aug": 20, "random_state": 0, **params}
    return eda(text, operations=(operation,), **params)


def test_insert_adds_n_words_from_the_vocabulary():
    n = round(0.25 * 13)  # 3
    for copy in copies("insert", vocabulary=VOCAB):
        words = copy.split()
        assert len(words) == 13 + n
        added = Counter(words) - Counter(TEXT.split())
        assert sum(added.values()) == n and set(added) <= set(VOCAB)


def test_insert_without_vocabulary_reuses_the_texts_words():
    for copy in copies("insert"):
        assert len(copy.split()) == 16 and set(copy.split()) <= set(TEXT.split())


def test_replace_without_vocabulary_uses_the_texts_words():
    for copy in copies("replace"):
        diff = [w for w, o in zip(copy.split(), TEXT.split(), strict=True) if w != o]
        assert len(diff) == 3 and set(diff) <= set(TEXT.split())


def test_delete_removes_n_words_and_keeps_order():
    for copy in copies("delete"):
        words = copy.split()
        assert len(words) == 13 - 3
        assert not Counter(words) - Counter(TEXT.split())
        it = iter(TEXT.split())
        assert all(word in it for word in words)  # a subsequence


def test_swap_keeps_the_words_and_moves_at_most_2n():
    changed = []
    for copy in copies("swap"):
        words = copy.split()
        assert Counter(words) == Counter(TEXT.split())
        moved = sum(a != b for a, b in zip(words, TEXT.split(), strict=True))
        assert moved <= 2 * 3
        changed.append(moved)
    assert max(changed) > 0


def test_replace_changes_exactly_n_positions_from_the_vocabulary():
    for copy in copies("replace", vocabulary=VOCAB):
        words = copy.split()
        assert len(words) == 13
        diff = [w for w, o in zip(words, TEXT.split(), strict=True) if w != o]
        assert len(diff) == 3 and set(diff) <= set(VOCAB)


def test_synonym_map_is_used_for_replace_and_insert():
    synonyms = {"quick": ["fast", "speedy"], "Dog": ["hound"]}
    replaced = copies("replace", synonyms=synonyms, rate=0.5)
    for copy in replaced:
        words = copy.split()
        assert words[1] in ("fast", "speedy") and words[8] == "hound"  # "dog" -> Dog
        assert sum(a != b for a, b in zip(words, TEXT.split(), strict=True)) == 2
    inserted = copies("insert", synonyms=synonyms, vocabulary=VOCAB)
    for copy in inserted:
        added = Counter(copy.split()) - Counter(TEXT.split())
        assert set(added) <= {"fast", "speedy", "hound"}


def test_rate_sets_the_number_of_changes():
    assert len(eda(TEXT, rate=0.5, n_aug=1, operations=("delete",))[0].split()) == 7
    # at least one change, however short the text
    assert len(eda("a b c", rate=0.01, n_aug=1, operations=("delete",))[0].split()) == 2


def test_never_empty():
    for operation in EDA_OPERATIONS:
        for copy in copies(operation, text="hello", rate=1.0):
            assert copy.strip()
    assert copies("delete", text="hello", rate=1.0)[0] == "hello"
    assert eda("   ", n_aug=2) == ["   ", "   "]  # nothing to augment


def test_deterministic_under_random_state():
    assert eda(TEXT, n_aug=8, random_state=3) == eda(TEXT, n_aug=8, random_state=3)
    assert eda(TEXT, n_aug=8, random_state=3) != eda(TEXT, n_aug=8, random_state=4)
    rng_state = np.random.RandomState(5)
    assert eda(TEXT, random_state=rng_state) == eda(
        TEXT, random_state=np.random.RandomState(5)
    )
    augment = EDA(random_state=0)
    first = [augment(TEXT) for _ in range(5)]
    assert len(set(first)) > 1  # a fresh copy on every call
    assert [EDA(random_state=0)(TEXT) for _ in range(1)] == first[:1]
    assert augment(TEXT, random_state=9) == EDA()(TEXT, random_state=9)


def test_all_operations_are_drawn():
    results = eda(TEXT, n_aug=60, vocabulary=VOCAB, random_state=0)
    lengths = Counter(len(copy.split()) for copy in results)
    assert {12, 13, 14} <= set(lengths)  # delete, swap/replace, insert


def test_bad_parameters_are_errors():
    with pytest.raises(ValueError, match="unknown EDA operations \\['shuffle'\\]"):
        EDA(operations=("delete", "shuffle"))
    with pytest.raises(TypeError, match="sequence of names"):
        EDA(operations="delete")
    with pytest.raises(ValueError, match="rate must be a float in \\(0, 1\\]"):
        EDA(rate=0)
    with pytest.raises(ValueError, match="n_aug must be an int >= 1"):
        eda(TEXT, n_aug=0)
    with pytest.raises(TypeError, match="synonyms must be a mapping"):
        EDA(synonyms=[("a", "b")])
    with pytest.raises(TypeError, match="augments str texts, got NoneType"):
        EDA()(None)
