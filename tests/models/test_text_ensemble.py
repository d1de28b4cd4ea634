"""TextEnsemble: the mean of its members' probabilities, harness, member checks, export."""

import keras
import numpy as np
import pytest

from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.text_ensemble import TextEnsemble
from ptft_keras.models.transformer import TransformerBackbone
from tests.harness import run_model_test


def _inputs(batch=4, seq=8, vocab=64):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, size=(batch, seq)).astype("int32")
    mask = (np.arange(seq)[None, :] < np.array([seq, 5, 3, 2])[:, None]).astype("int32")
    return {"token_ids": np.where(mask, ids, 0).astype("int32"), "padding_mask": mask}


def _member(reverse_tokens=False, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    backbone = TransformerBackbone.from_preset("tiny", causal=True)
    return TextClassifier(backbone, 3, reverse_tokens=reverse_tokens, **kwargs)


def test_output_is_the_log_of_the_mean_probability():
    members = [_member(False, 0), _member(True, 1)]
    ensemble = TextEnsemble(members)
    x = _inputs()
    probabilities = [keras.ops.convert_to_numpy(keras.ops.softmax(m(x))) for m in members]
    expected = np.mean(probabilities, axis=0)
    got = keras.ops.convert_to_numpy(keras.ops.softmax(ensemble(x)))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(np.exp(keras.ops.convert_to_numpy(ensemble(x))), expected, atol=1e-6)
    assert ensemble.label_names == members[0].label_names and ensemble.num_classes == 3


def test_harness(tmp_path):
    y = np.array([0, 1, 2, 1])
    run_model_test(lambda: TextEnsemble([_member(False, 0), _member(True, 1)]), _inputs(),
                   tmp_path, y=y, loss="task")  # fmt: skip


def test_member_checks_name_the_bad_value():
    with pytest.raises(ValueError, match="at least 2"):
        TextEnsemble([_member()])
    with pytest.raises(ValueError, match="TextClassifier, received Dense"):
        TextEnsemble([_member(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="label_names"):
        TextEnsemble([_member(), _member(label_names=["a", "b", "c"])])
    with pytest.raises(ValueError, match="sequence_length"):
        TextEnsemble([_member(), _member(sequence_length=8)])
    other_vocabulary = TransformerBackbone.from_preset("tiny", vocabulary_size=70)
    with pytest.raises(ValueError, match="vocabulary_size: 64 .* vs 70"):
        TextEnsemble([_member(), TextClassifier(other_vocabulary, 3)])
