"""One test harness for every layer and model (keras-hub's `TestCase` pattern).

    run_layer_test(CosineLogits, {"num_classes": 3}, features, expected_output_shape=(4, 3))
    run_model_test(build_model, x, y, tmp_path)

Each checks, on whatever backend the suite runs on (`make test` runs the model and layer
tests on TensorFlow and on JAX):

* build: the output shape;
* config: `from_config(get_config())` rebuilds an equal config;
* `.keras` round trip: the reloaded object has the same class, an equal config (compared
  as JSON, so tuples and lists match) and the same outputs;
* one training step: the loss is finite and every trainable weight that gets a
  gradient changes (a frozen or disconnected weight would not);
* dtype policy: built under `mixed_bfloat16`, variables stay float32 and outputs come in
  the compute dtype (or float32 where the model casts its logits on purpose).
"""

import json
import os

import keras
import numpy as np


def _json(config):
    return json.loads(json.dumps(config, default=str))


def _numpy(tree):
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), tree)


def assert_same_outputs(a, b, atol=1e-6):
    for x, y in zip(keras.tree.flatten(_numpy(a)), keras.tree.flatten(_numpy(b)), strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


def run_model_saving_test(model, x, tmp_path, atol=1e-6):
    """`.keras` round trip: same class, equal config, same outputs. Returns the reload."""
    expected = model(x, training=False)
    path = os.path.join(str(tmp_path), f"{model.name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model), (type(restored), type(model))
    assert _json(restored.get_config()) == _json(model.get_config())
    assert_same_outputs(restored(x, training=False), expected, atol=atol)
    return restored


def run_train_step_test(model, x, y=None, sample_weight=None, loss=None, min_changed=1.0):
    """One `fit` step: finite loss, and the trainable weights change (share >= min_changed
    of those that exist; a weight without a gradient path, e.g. an unused head, may not).
    `loss="task"` uses the task model's own `compile()` defaults."""
    if loss == "task":
        model.compile()
    elif not model.compiled:
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss or "mse")
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    assert before, f"{model.name} has no trainable weights"
    batch = len(_first(x))
    history = model.fit(x, y, sample_weight=sample_weight, epochs=1, batch_size=batch, verbose=0)
    assert np.isfinite(history.history["loss"]).all(), history.history
    after = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    changed = [not np.array_equal(b, a) for b, a in zip(before, after, strict=True)]
    assert np.mean(changed) >= min_changed, (
        f"{sum(changed)}/{len(changed)} trainable weights changed in one step"
    )
    return history


def run_dtype_test(build, x, output_dtype="bfloat16"):
    """Built under `mixed_bfloat16`: float32 variables, outputs in `output_dtype`."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build()
        outputs = model(x)
    finally:
        keras.config.set_dtype_policy(previous)
    assert all(v.dtype == "float32" for v in model.weights), [v.dtype for v in model.weights]
    for out in keras.tree.flatten(outputs):
        assert keras.backend.standardize_dtype(out.dtype) == output_dtype, out.dtype
    return model


def run_model_test(build, x, tmp_path, y=None, sample_weight=None, loss=None, output_dtype=None,
                   min_changed=1.0):  # fmt: skip
    """The whole harness for a model: build, `.keras` round trip, train step, dtype."""
    model = build()
    model(x)
    run_model_saving_test(model, x, tmp_path)
    run_train_step_test(build(), x, y, sample_weight, loss, min_changed)
    if output_dtype is not None:
        run_dtype_test(build, x, output_dtype)
    return model


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    tmp_path,
    call_kwargs=None,
    trainable=True,
    output_dtype="bfloat16",
    min_changed=1.0,
):
    """The whole harness for a layer, wrapped in a one-layer functional model."""
    call_kwargs = call_kwargs or {}
    inputs_data = input_data if isinstance(input_data, tuple) else (input_data,)

    def build():
        inputs = [keras.Input(np.shape(d)[1:], dtype=_dtype(d)) for d in inputs_data]
        layer = layer_cls(**init_kwargs)
        return keras.Model(inputs, layer(*inputs, **call_kwargs), name="harness")

    layer = layer_cls(**init_kwargs)
    output = layer(*inputs_data, **call_kwargs)
    assert tuple(output.shape) == tuple(expected_output_shape), output.shape
    clone = layer_cls.from_config(layer.get_config())
    assert _json(clone.get_config()) == _json(layer.get_config())
    model = build()
    run_model_saving_test(model, list(inputs_data), tmp_path)
    if trainable:
        target = np.zeros(expected_output_shape, "float32")
        run_train_step_test(build(), list(inputs_data), target, min_changed=min_changed)
    if output_dtype is not None:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            mixed = layer_cls(**init_kwargs)
            out = mixed(*inputs_data, **call_kwargs)
        finally:
            keras.config.set_dtype_policy(previous)
        assert all(v.dtype == "float32" for v in mixed.weights)
        assert keras.backend.standardize_dtype(out.dtype) == output_dtype, out.dtype
    return layer


def _dtype(array):
    dtype = np.asarray(array).dtype
    return "int32" if np.issubdtype(dtype, np.integer) else str(dtype)


def _first(x):
    return keras.tree.flatten(x)[0]


def gradient_wrt_input(fn, x):
    """d sum(fn(x)) / dx as numpy, on the active backend (JAX or TensorFlow)."""
    import pytest

    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x).numpy()
    pytest.skip(f"no gradient helper for backend {keras.backend.backend()}")
