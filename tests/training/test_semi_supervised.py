"""Consistency training under `fit`: the batch stream, a kill and resume, a strategy.
(The loss itself is tested in tests/models/test_consistency.py.)"""

import keras
import numpy as np
import pytest

from ptft_keras.training.callbacks import training_callbacks
from ptft_keras.training.semi_supervised import ConsistencyBatches, train_consistency, uda


def test_batches_keep_the_ratio_and_visit_every_unlabeled_input_once_per_pass():
    x, y = np.arange(10, dtype="float32")[:, None], np.arange(10) % 2
    unlabeled = np.arange(100, 196, dtype="float32")[:, None]  # 96 = 4 steps of 24
    batches = ConsistencyBatches(x, y, unlabeled, batch_size=8, mu=3, steps=8, seed=0)
    seen = []
    for i in range(len(batches)):
        inputs, labels = batches[i]
        assert inputs["labeled"].shape == (8, 1) and inputs["unlabeled"].shape == (24, 1)
        assert labels.shape == (8,) and set(labels) <= {0, 1}
        seen.append(inputs["unlabeled"][:, 0])
    for start in (0, 4):  # two passes over the pool, each a permutation
        assert sorted(np.concatenate(seen[start : start + 4])) == list(range(100, 196))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"mu": 0}, "mu"), ({"unlabeled": np.zeros((0, 1))}, "empty"),
     ({"y": np.zeros(3)}, "one label per input")],
)  # fmt: skip
def test_batches_reject_bad_inputs(kwargs, message):
    args = dict(x=np.zeros((4, 1)), y=np.zeros(4), unlabeled=np.zeros((8, 1))) | kwargs
    with pytest.raises(ValueError, match=message):
        ConsistencyBatches(**args)


def _classifier():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile = lambda **kw: keras.Model.compile(  # a classifier's default loss
        model, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **kw
    )
    return model


def _data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)).astype("float32"), np.arange(12) % 3
    return x, y, rng.normal(size=(60, 4)).astype("float32")


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("killed after epoch 2")


def test_a_killed_run_resumes_from_its_last_epoch(tmp_path):
    x, y, unlabeled = _data()
    common = dict(weak=None, strong=keras.layers.GaussianNoise(0.3), steps=40, batch_size=4,
                  threshold=0.0, steps_per_epoch=10)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        train_consistency(_classifier(), x, y, unlabeled,
                          callbacks=[*training_callbacks(tmp_path, verbose=False), _Kill()],
                          **common)  # fmt: skip
    resumed = training_callbacks(tmp_path, verbose=False)
    history = train_consistency(_classifier(), x, y, unlabeled, callbacks=resumed, **common)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only: 1 and 2 were restored
    assert "confident_share" in history.history


@pytest.mark.tf_only
def test_trains_under_a_strategy():
    from ptft_keras.training.strategies import get_strategy

    strategy = get_strategy("mirrored")
    x, y, unlabeled = _data()
    with strategy.scope():
        classifier = _classifier()
    history = train_consistency(classifier, x, y, unlabeled, weak=None,
                                strong=keras.layers.GaussianNoise(0.3), steps=20, batch_size=4,
                                threshold=0.5, strategy=strategy, steps_per_epoch=10)  # fmt: skip
    assert np.isfinite(history.history["loss"]).all() and len(history.history["loss"]) == 2


def test_text_uda_trains_a_text_classifier_on_unlabeled_token_ids():
    import dataclasses

    from ptft_keras.models.text_classifier import TextClassifier
    from ptft_keras.models.transformer import TransformerBackbone
    from ptft_keras.training.recipes import text as text_recipe

    backbone = TransformerBackbone.from_preset("tiny", causal=True)
    model = TextClassifier(backbone, 2, sequence_length=12)
    rng = np.random.default_rng(0)

    def ids(n):
        body = rng.integers(5, backbone.vocabulary_size, (n, 12))
        body[:, 0], body[:, 9], body[:, 10:] = 3, 4, 0  # [CLS] 8 tokens [SEP] padding
        return body.astype("int32")

    recipe = dataclasses.replace(text_recipe.TextRecipe(), uda_steps=4, batch_size=4,
                                 uda_threshold=0.0)  # fmt: skip
    history = uda(model, ids(8), np.arange(8) % 2, ids(40), recipe)
    assert len(history.history["loss"]) == 1 and history.history["confident_share"] == [1.0]
    assert np.isfinite(history.history["loss"]).all()
