"""Helper run by test_multi_worker.py: one worker of a ``multi_worker`` training run.

The test starts two of these with their own ``TF_CONFIG`` (cluster on 127.0.0.1).
Each trains the same tiny model with ``model.fit`` under ``MultiWorkerMirroredStrategy``
and ``training_callbacks(backup_dir)``; the chief keeps the checkpoints and the final
``model.weights.h5``, the other worker saves to temporary directories that are removed.
Each writes its final weights to ``OUT/weights-<task id>.npz`` so the test can compare.

``--die-after-epoch N`` makes every worker SIGKILL itself right after epoch N's backup,
so that a restart of the cluster must resume from the chief's checkpoint.

Usage: TF_CONFIG=... python multi_worker_script.py OUT [--epochs 2] [--strategy=cpu]
                                                   [--die-after-epoch N]
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ptft_keras.training.strategies import get_strategy, task_info  # noqa: E402

# MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
# ``--strategy cpu`` (no TF_CONFIG) gives the single-process reference run.
STRATEGY = get_strategy("cpu" if "--strategy=cpu" in sys.argv else "multi_worker")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.checkpointing import AtomicBackupAndRestore, save_on_chief  # noqa: E402


class DieAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def fit_with_bool_mask():
    """A bool input (like a padding mask), global batch 5: 3 rows on one worker, 2 on the other."""
    with STRATEGY.scope():
        x = keras.Input((4,), name="x")
        mask = keras.Input((4,), dtype="bool", name="mask")
        y = keras.layers.Dense(1, name="out")(keras.ops.where(mask, x, 0.0))
        model = keras.Model({"x": x, "mask": mask}, y)
        model.compile(optimizer="sgd", loss="mse")
    data = {"x": np.ones((10, 4), "float32"), "mask": np.arange(40).reshape(10, 4) % 3 > 0}
    history = model.fit(data, np.zeros((10, 1)), batch_size=5, epochs=1, verbose=0, shuffle=False)
    return float(history.history["loss"][0])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--strategy", choices=("multi_worker", "cpu"), default="multi_worker")
    parser.add_argument("--die-after-epoch", type=int, default=0)
    args = parser.parse_args(argv)
    _, task_id, is_chief = task_info()

    rng = np.random.default_rng(0)  # same data on every worker; Keras shards it
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, :1] - 2.0 * x[:, 1:2]).astype("float32")

    keras.utils.set_random_seed(0)
    with STRATEGY.scope():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    callbacks = training_callbacks(
        os.path.join(args.out, "backup"), verbose=True, delete_checkpoint=False
    )
    if args.die_after_epoch:
        callbacks.append(DieAfterEpoch(args.die_after_epoch))  # after the backup callback
    # Global batch 32 = 16 per worker.
    history = model.fit(
        x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=callbacks, shuffle=False
    )
    save_on_chief(model, os.path.join(args.out, "model.weights.h5"))
    np.savez(
        os.path.join(args.out, f"weights-{task_id}.npz"),
        *model.get_weights(),
        loss=np.array(history.history["loss"]),
    )
    bool_loss = fit_with_bool_mask()
    backup = next(c for c in callbacks if isinstance(c, AtomicBackupAndRestore))
    print(
        f"worker {task_id} chief={is_chief} replicas={STRATEGY.num_replicas_in_sync} "
        f"bool_loss={bool_loss:.6f} "
        f"resumed_from={backup.restored_epoch} epochs_run={history.epoch} done"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
