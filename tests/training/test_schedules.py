"""Warmup-then-decay schedules: exact values at the key steps, errors, serialization."""

import math

import keras
import numpy as np
import pytest

from ptft_keras.training.schedules import WarmupLinearDecay, warmup_then_decay


def _values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in steps])


def test_cosine_uses_keras_cosine_decay_with_warmup():
    schedule = warmup_then_decay(1e-3, total_steps=110, warmup_steps=10, decay="cosine")
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    values = _values(schedule, [0, 5, 10, 60, 110, 200])
    expected = [0.0, 5e-4, 1e-3, 1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0]
    np.testing.assert_allclose(values, expected, atol=1e-9)


def test_linear_warmup_then_linear_decay_values():
    schedule = warmup_then_decay(2e-3, total_steps=100, warmup_fraction=0.2, decay="linear")
    assert isinstance(schedule, WarmupLinearDecay)
    values = _values(schedule, [0, 10, 20, 60, 100, 150])
    np.testing.assert_allclose(values, [0.0, 1e-3, 2e-3, 1e-3, 0.0, 0.0], atol=1e-9)


def test_final_fraction_is_the_floor():
    schedule = warmup_then_decay(
        1.0, total_steps=10, warmup_steps=2, decay="linear", final_fraction=0.1
    )
    np.testing.assert_allclose(_values(schedule, [10, 50]), [0.1, 0.1], atol=1e-6)
    cosine = warmup_then_decay(1.0, total_steps=10, warmup_steps=2, final_fraction=0.1)
    np.testing.assert_allclose(_values(cosine, [10]), [0.1], atol=1e-6)


def test_schedule_round_trips_with_adamw():
    schedule = warmup_then_decay(1e-3, total_steps=50, decay="linear")
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01)
    config = keras.saving.serialize_keras_object(optimizer)
    restored = keras.saving.deserialize_keras_object(config)
    restored_schedule = keras.optimizers.schedules.deserialize(
        restored.get_config()["learning_rate"]
    )
    assert isinstance(restored_schedule, WarmupLinearDecay)
    np.testing.assert_allclose(_values(restored_schedule, [3, 30]), _values(schedule, [3, 30]))
    assert float(restored.learning_rate) == pytest.approx(0.0)  # step 0 of warmup


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"peak_learning_rate": 0.0, "total_steps": 10}, "peak_learning_rate"),
        ({"peak_learning_rate": 1e-3, "total_steps": 1}, "total_steps"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "decay": "step"}, "decay"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "final_fraction": 2.0}, "final_fraction"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        warmup_then_decay(**kwargs)
