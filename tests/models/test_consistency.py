"""ConsistencyTrainer (FixMatch / UDA): the unlabeled loss, its threshold, and `fit`.
Every backend."""

import keras
import numpy as np
import pytest

from ptft_keras.models.consistency import ConsistencyLogs, ConsistencyTrainer
from ptft_keras.training.semi_supervised import ConsistencyBatches
from tests.harness import run_model_test


def _classifier(num_classes=3):
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(inputs))


def _loss(trainer, weak, strong):
    loss = trainer.unlabeled_loss(np.asarray(weak, "float32"), np.asarray(strong, "float32"))
    return float(keras.ops.convert_to_numpy(loss))


def test_unlabeled_loss_is_zero_below_the_threshold_and_cross_entropy_above():
    weak = [[2.0, 0.0, 0.0], [0.0, 0.1, 0.0]]  # max probabilities 0.787 and 0.355
    strong = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    trainer = ConsistencyTrainer(_classifier(), threshold=0.95)
    assert _loss(trainer, weak, strong) == 0.0
    assert float(keras.ops.convert_to_numpy(trainer.confident_share)) == 0.0
    trainer = ConsistencyTrainer(_classifier(), threshold=0.7)  # only the first passes
    logits = np.asarray(strong[0])
    cross_entropy = -(logits[0] - np.log(np.exp(logits).sum()))  # pseudo-label 0
    assert _loss(trainer, weak, strong) == pytest.approx(cross_entropy / 2, rel=1e-5)
    assert float(keras.ops.convert_to_numpy(trainer.confident_share)) == 0.5


def test_distribution_alignment_moves_the_running_mean():
    trainer = ConsistencyTrainer(
        _classifier(), threshold=0.0, distribution_alignment=True, alignment_momentum=0.5
    )
    _loss(trainer, [[5.0, 0.0, 0.0]] * 4, [[0.0, 0.0, 0.0]] * 4)
    mean = keras.ops.convert_to_numpy(trainer.prediction_mean)
    assert mean[0] > 0.6 and mean[1] < 0.2 and mean.sum() == pytest.approx(1.0, abs=1e-5)


def test_plain_inputs_are_the_classifier():
    classifier = _classifier()
    trainer = ConsistencyTrainer(classifier)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(trainer(x)), keras.ops.convert_to_numpy(classifier(x))
    )
    inputs = {"labeled": x, "unlabeled": x[:2]}
    assert tuple(trainer(inputs).shape) == (5, 3)  # inference: the labeled logits


def test_harness(tmp_path):
    """Build, `.keras` round trip (classifier, views and settings travel), one training
    step with the unlabeled term on (threshold 0) that moves every classifier weight,
    mixed_bfloat16."""

    def build():
        return ConsistencyTrainer(
            _classifier(),
            weak=keras.layers.GaussianNoise(0.1),
            strong=keras.layers.GaussianNoise(0.5),
            threshold=0.0,
            distribution_alignment=True,
        )

    rng = np.random.default_rng(0)
    x = {"labeled": rng.normal(size=(6, 4)), "unlabeled": rng.normal(size=(6, 4))}
    x = {key: value.astype("float32") for key, value in x.items()}
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainer = run_model_test(build, x, tmp_path, y=np.arange(6) % 3, loss=loss,
                             output_dtype="bfloat16")  # fmt: skip
    assert trainer.threshold == 0.0 and trainer.distribution_alignment


def _fit(threshold, steps=6):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    unlabeled = rng.normal(size=(24, 4)).astype("float32")
    classifier = _classifier()
    trainer = ConsistencyTrainer(
        classifier, strong=keras.layers.GaussianNoise(0.5), threshold=threshold
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    batches = ConsistencyBatches(x, y, unlabeled, batch_size=8, mu=3, steps=steps)
    history = trainer.fit(batches, epochs=2, verbose=0, callbacks=[ConsistencyLogs(trainer)])
    return classifier, history.history


def test_fit_adds_the_unlabeled_loss_only_above_the_threshold():
    _, never = _fit(threshold=1.0)
    _, always = _fit(threshold=0.0)
    assert never["confident_share"] == [0.0, 0.0]
    assert always["confident_share"] == [1.0, 1.0]
    assert always["loss"][0] > never["loss"][0]  # the extra (positive) term is in the loss
