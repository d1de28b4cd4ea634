"""Helper run in a subprocess by test_strategies.py: one device vs ``mirrored`` on 2 CPUs.

Logical CPU devices must be configured before TensorFlow initialises its devices (and
JAX's host device count before JAX starts), which is why this runs as its own process.
With ``KERAS_BACKEND=jax`` ``mirrored`` is ``keras.distribution.DataParallel``.
Prints one JSON line: per-epoch losses of both runs and the largest absolute difference
between their final weights.

Usage: python mirrored_script.py MNIST_DIR [--epochs 2] [--samples 1024] [--batch-size 64]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ.get("KERAS_BACKEND") == "jax":
    # JAX: two host devices for keras.distribution.DataParallel (before JAX starts).
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ptft_keras.data.datasets.mnist import load_mnist  # noqa: E402
from ptft_keras.training.strategies import check_global_batch_size, get_strategy  # noqa: E402


def build(strategy, initial_weights=None):
    with strategy.scope():  # build AND compile inside the scope
        model = keras.Sequential(
            [
                keras.Input((28, 28)),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(32, activation="relu", name="hidden"),
                keras.layers.Dense(10, name="logits"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    if initial_weights is not None:
        model.set_weights(initial_weights)
    return model


def fit_with_bool_mask(strategy):
    """A bool input (like a padding mask); on TF also a batch of 5 split 3 + 2.

    JAX's DataParallel requires every batch to divide evenly over the devices, so there
    the batch is 4.
    """
    with strategy.scope():
        x = keras.Input((4,), name="x")
        mask = keras.Input((4,), dtype="bool", name="mask")
        y = keras.layers.Dense(1, name="out")(keras.ops.where(mask, x, 0.0))
        model = keras.Model({"x": x, "mask": mask}, y)
        model.compile(optimizer="sgd", loss="mse")
    batch = 4 if keras.backend.backend() == "jax" else 5
    data = {"x": np.ones((2 * batch, 4), "float32"), "mask": np.arange(8 * batch) % 3 > 0}
    data["mask"] = data["mask"].reshape(2 * batch, 4)
    history = model.fit(data, np.zeros((2 * batch, 1)), batch_size=batch, epochs=1, verbose=0)
    return float(history.history["loss"][0])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("mnist_dir")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    args = parser.parse_args(argv)

    images, labels = load_mnist(source="idx", data_dir=args.mnist_dir)
    x = images[: args.samples].astype("float32") / 255.0
    y = labels[: args.samples].astype("int32")

    # One strategy at a time: on JAX get_strategy installs a process-global distribution.
    keras.utils.set_random_seed(0)
    results, start, models = {}, None, {}
    for key in ("cpu", "mirrored"):
        strategy = get_strategy(key)
        model = build(strategy, start)
        start = model.get_weights() if start is None else start
        batch = check_global_batch_size(args.batch_size, strategy)
        history = model.fit(x, y, batch_size=batch, epochs=args.epochs, shuffle=False, verbose=0)
        results[key] = [float(v) for v in history.history["loss"]]
        results[f"{key}_replicas"] = strategy.num_replicas_in_sync
        models[key] = model
        if keras.backend.backend() == "jax":  # where the kernel lives: replicated on 2 devices?
            results[f"{key}_kernel_devices"] = len(model.trainable_variables[0].value.devices())
    single, multi = models["cpu"], models["mirrored"]
    diffs = [
        np.max(np.abs(a - b))
        for a, b in zip(single.get_weights(), multi.get_weights(), strict=True)
    ]
    results["max_weight_diff"] = float(max(diffs))
    results["weights_moved"] = float(
        max(np.max(np.abs(a - b)) for a, b in zip(start, single.get_weights(), strict=True))
    )
    results["bool_input_loss"] = fit_with_bool_mask(get_strategy("mirrored"))
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
