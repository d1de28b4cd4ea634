import keras
import numpy as np
import pytest

from ptft_keras.transfer.unfreezing import (
    Stage,
    fit_stages,
    gradual_unfreezing_stages,
    lp_ft_stages,
)
from ptft_keras.variables import snapshot, trainable_keys
from tests.peft.toy import build_toy_model, toy_data

LOSS = {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}


class Recorder(keras.callbacks.Callback):
    """Trainable keys at each epoch start and the keys whose values changed in each epoch."""

    def __init__(self):
        super().__init__()
        self.trainable, self.changed = {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.trainable[epoch] = trainable_keys(self.model)
        self._before = snapshot(self.model)

    def on_epoch_end(self, epoch, logs=None):
        after = snapshot(self.model)
        self.changed[epoch] = {k for k in after if not np.array_equal(after[k], self._before[k])}


def _prefixes(keys):
    return sorted({k.split("/")[0] for k in keys})


def test_gradual_unfreezing_changes_trainable_set_at_the_right_epochs():
    model = build_toy_model()
    stages = gradual_unfreezing_stages(["block_0/*", "block_1/*"], head="head/*")
    assert [s.name for s in stages] == ["head", "top_1", "top_2", "all"]
    recorder = Recorder()
    x, y = toy_data()
    history = fit_stages(
        model,
        stages,
        optimizer=keras.optimizers.Adam(0.01),
        compile_kwargs=LOSS,
        x=x,
        y=y,
        batch_size=8,
        verbose=0,
        callbacks=[recorder],
    )
    expected = [
        ["head"],
        ["block_1", "head"],
        ["block_0", "block_1", "head"],
        ["block_0", "block_1", "embedding", "head"],
    ]
    assert [_prefixes(recorder.trainable[e]) for e in range(4)] == expected
    # What actually moved in each epoch is exactly what was unfrozen.
    assert [_prefixes(recorder.changed[e]) for e in range(4)] == expected
    assert history.epoch == [0, 1, 2, 3] and len(history.history["loss"]) == 4
    assert [s[1] for s in history.stages] == [0, 1, 2, 3]


def test_optimizer_state_carries_over_between_stages():
    model = build_toy_model()
    x, y = toy_data()
    stages = [Stage("head/*", 1, 0.01, "probe"), Stage("*", 1, 0.001, "all")]
    template = keras.optimizers.Adam(0.01)
    fit_stages(
        model, stages, optimizer=template, compile_kwargs=LOSS, x=x, y=y, batch_size=8, verbose=0
    )
    optimizer = model.optimizer
    assert optimizer is not template and not template.built
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2 * 4  # 32 / 8 per epoch
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.001)
    # Slots were created for every variable; the head's moments include stage one.
    assert len(optimizer._momentums) == 22


def test_lp_ft_stages():
    stages = lp_ft_stages("head/*", 2, 3, probe_lr=1e-2, finetune_lr=1e-4)
    assert [(s.trainable, s.epochs, s.learning_rate) for s in stages] == [
        ("head/*", 2, 1e-2),
        ("*", 3, 1e-4),
    ]
    with pytest.raises(ValueError, match="lower rate"):
        lp_ft_stages("head/*", 1, 1, probe_lr=1e-4, finetune_lr=1e-3)


def test_fit_stages_rejects_epochs_kwarg():
    with pytest.raises(ValueError, match="epochs"):
        fit_stages(build_toy_model(), [Stage("*")], optimizer=keras.optimizers.Adam(), epochs=3)


@pytest.mark.tf_only
def test_keras_ignores_trainable_change_without_recompile():
    # The behaviour `fit_stages` exists for: on TensorFlow the cached train function keeps
    # the old trainable list, and the built optimizer refuses new variables.
    model = build_toy_model()
    model.get_layer("block_1").trainable = False
    model.compile(keras.optimizers.Adam(0.01), **LOSS)
    x, y = toy_data()
    model.fit(x, y, batch_size=8, verbose=0)
    before = snapshot(model)
    model.get_layer("block_1").trainable = True
    model.fit(x, y, batch_size=8, verbose=0)
    after = snapshot(model)
    assert np.array_equal(before["block_1/mlp/output/kernel"], after["block_1/mlp/output/kernel"])
    model.compile(model.optimizer, **LOSS)
    with pytest.raises(ValueError, match="Unknown variable"):
        model.fit(x, y, batch_size=8, verbose=0)
