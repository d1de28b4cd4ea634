"""ptft_keras.training.baselines: the TF-IDF bigram logistic regression."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ptft_keras.training.baselines import tfidf_logistic_regression  # noqa: E402

pytestmark = pytest.mark.tf_only


def _reviews(n, seed):
    """Label 1 iff the text holds a positive word; filler words carry no signal."""
    rng = np.random.default_rng(seed)
    positive, negative = ["great", "lovely", "superb"], ["awful", "dull", "boring"]
    filler = ["the", "film", "plot", "actor", "was", "a", "scene"]
    labels = rng.integers(0, 2, n)
    texts = [
        " ".join([*rng.choice(filler, 4), rng.choice(positive if y else negative)]) for y in labels
    ]
    return texts, labels


def test_learns_a_word_level_rule_and_generalises():
    train_x, train_y = _reviews(1000, seed=0)  # 4 batches of 256 per epoch
    eval_x, eval_y = _reviews(100, seed=1)
    accuracy = tfidf_logistic_regression(train_x, train_y, eval_x, eval_y, epochs=100)
    assert accuracy >= 0.95
    shuffled = np.random.default_rng(2).permutation(train_y)  # no signal left to learn
    chance = tfidf_logistic_regression(train_x, shuffled, eval_x, eval_y, epochs=100)
    assert chance < 0.8


def test_mismatched_texts_and_labels_are_rejected():
    with pytest.raises(ValueError, match="2 texts and 3 labels"):
        tfidf_logistic_regression(["a b", "c d"], [0, 1, 1], ["a"], [0], epochs=1)
