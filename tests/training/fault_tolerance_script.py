"""Helper run by test_fault_tolerance.py: a training run that may be killed and restarted.

Trains a tiny regression model for ``--epochs`` with ``training_callbacks(OUT/backup)``
(SGD with momentum, so the optimizer state must survive too; fixed data order, so a
resumed run must end exactly where an uninterrupted one does). ``--sleep`` slows each
batch so a test can SIGKILL it mid-epoch; ``--die-in-save N`` makes the process SIGKILL
itself in the middle of writing the N-th checkpoint (half the weights file on disk, no
``state.json`` yet): a real crash mid-write, at a known moment. On success writes
``OUT/result.json`` (the epoch it resumed from, the epochs it ran) and ``OUT/weights.npz``.

Usage: python fault_tolerance_script.py OUT [--epochs 6] [--sleep 0.0] [--width 16]
                                          [--die-in-save N]
"""

import argparse
import json
import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.checkpointing import AtomicBackupAndRestore  # noqa: E402
from ptft_keras.training.strategies import get_strategy  # noqa: E402


class Sleep(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def die_in_save(model, n):
    """SIGKILL this process half-way through the ``n``-th ``save_weights`` call."""
    original, calls = model.save_weights, []

    def save_weights(filepath, *args, **kwargs):
        calls.append(filepath)
        original(filepath, *args, **kwargs)
        if len(calls) == n:
            with open(filepath, "r+b") as f:
                f.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    model.save_weights = save_weights


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per batch")
    parser.add_argument("--width", type=int, default=16, help="hidden units (checkpoint size)")
    parser.add_argument("--die-in-save", type=int, default=0, help="crash in the N-th save")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, :1] - 2.0 * x[:, 1:2]).astype("float32")

    keras.utils.set_random_seed(0)
    strategy = get_strategy("cpu")
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(args.width, activation="relu", name="hidden"),
                keras.layers.Dense(1, name="out"),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    if args.die_in_save:
        die_in_save(model, args.die_in_save)
    callbacks = training_callbacks(os.path.join(args.out, "backup"), verbose=True)
    callbacks.append(Sleep(args.sleep))
    history = model.fit(
        x, y, batch_size=32, epochs=args.epochs, shuffle=False, verbose=0, callbacks=callbacks
    )
    backup = next(c for c in callbacks if isinstance(c, AtomicBackupAndRestore))
    np.savez(os.path.join(args.out, "weights.npz"), *model.get_weights())
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump({"restored_epoch": backup.restored_epoch, "epochs_run": history.epoch}, f)
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
