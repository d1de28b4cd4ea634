"""Crash-safe per-epoch backup and resume (a hardened ``keras.callbacks.BackupAndRestore``).

Why not Keras' own callback (keras 3.15, ``keras/src/callbacks/backup_and_restore.py``):

* it writes ``latest.weights.h5`` *in place* and then ``training_metadata.json``
  separately, so a crash mid-write leaves a truncated latest file, and a crash between
  the two leaves weights of epoch N+1 labelled epoch N;
* its ``double_checkpoint`` fallback only triggers on ``OSError``: a flipped byte in the
  weight data loads silently (HDF5 has no checksum on dataset contents);
* it has no multi-worker logic: every worker writes the same files.

Here each checkpoint is a directory ``ckpt-<epoch>/`` holding ``model.weights.h5``
(model and optimizer state, as ``model.save_weights`` writes it) and ``state.json``
(epoch, size and SHA-256 of the weights, and the random-generator states that
``save_weights`` leaves out, so that noise and augmentation continue where they were).
It is written to a temporary directory, fsynced, then renamed into place (``os.rename``
of a directory is atomic on POSIX), and the parent directory is fsynced. The newest
``keep`` checkpoints are kept. On resume the newest checkpoint whose checksum matches is
loaded; a corrupt one is reported with a warning naming it and the previous good one is
used; if every checkpoint is corrupt, ``CorruptCheckpointError``.

Multi-worker (``tf.distribute.MultiWorkerMirroredStrategy``): every worker saves (as TF's
multi-worker guide prescribes), the chief into ``backup_dir`` and the others into a
temporary ``backup_dir/.worker-<id>-tmp`` that is deleted at once.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings

import keras

from ptft_keras.training.strategies import task_info

_CKPT = re.compile(r"^ckpt-(\d+)$")
WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "state.json"


class CorruptCheckpointError(RuntimeError):
    """No checkpoint in the backup directory passes its integrity check."""


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Back up training state each epoch, atomically; resume from the last good epoch.

    Args:
        backup_dir: directory for this run's checkpoints (not shared with anything else).
        keep: how many completed-epoch checkpoints to keep (>= 2 keeps a fallback).
        delete_checkpoint: delete the checkpoints when ``fit`` finishes normally (as
            Keras does), so that a new ``fit`` starts afresh.
    """

    def __init__(self, backup_dir, keep=2, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"backup_dir must be a non-empty path; got {backup_dir!r}.")
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1; got {keep!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.keep = keep
        self.delete_checkpoint = delete_checkpoint
        self.restored_epoch = 0  # epochs already done when fit() started (for tests, logs)

    # --- resume -----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "AtomicBackupAndRestore needs a built model before fit(); build it by "
                "calling it on a batch or with model.build(input_shape)."
            )
        if task_info()[2] and os.path.isdir(self.backup_dir):
            # Half-written checkpoints of a killed run: never loaded, removed here.
            for name in os.listdir(self.backup_dir):
                if name.startswith(".tmp-ckpt-"):
                    shutil.rmtree(os.path.join(self.backup_dir, name), ignore_errors=True)
        found = latest_valid_checkpoint(self.backup_dir)
        if found is None:
            self.restored_epoch = 0
            return
        path, state = found
        if self.model.optimizer is not None and not self.model.optimizer.built:
            # The weights file holds optimizer state too; its variables must exist first.
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(os.path.join(path, WEIGHTS_FILE))
        except Exception as error:  # e.g. a different model architecture
            raise CorruptCheckpointError(
                f"Checkpoint {path} passed its checksum but does not load into "
                f"{self.model.name!r}: {error}"
            ) from error
        rng_states = _rng_states(self.model)
        if len(state.get("rng_states", ())) == len(rng_states):
            for variable, value in zip(rng_states, state.get("rng_states", ()), strict=True):
                variable.assign(keras.ops.convert_to_tensor(value, variable.dtype))
        self.restored_epoch = state["epoch"]
        self.model._initial_epoch = state["epoch"]  # what keras' BackupAndRestore sets

    # --- save -------------------------------------------------------------------------

    def on_epoch_end(self, epoch, logs=None):
        _, task_id, is_chief = task_info()
        if is_chief:
            save_checkpoint(self.model, self.backup_dir, epoch + 1, keep=self.keep)
        else:
            temp = os.path.join(self.backup_dir, f".worker-{task_id}-tmp")
            save_checkpoint(self.model, temp, epoch + 1, keep=1)
            shutil.rmtree(temp, ignore_errors=True)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and task_info()[2]:
            for name, _ in _checkpoint_dirs(self.backup_dir):
                shutil.rmtree(os.path.join(self.backup_dir, name), ignore_errors=True)


def save_on_chief(model, filepath):
    """``model.save_weights(filepath)`` on the chief; other workers save to a temp dir.

    Under ``MultiWorkerMirroredStrategy`` every worker must take part in saving (TF's
    multi-worker guide), but only the chief's file is kept: the others write to
    ``<dir>/.worker-<id>-tmp/`` which is removed straight after. Returns the kept path
    (or ``None`` on a non-chief).
    """
    _, task_id, is_chief = task_info()
    if is_chief:
        os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)
        model.save_weights(filepath)
        return filepath
    temp = os.path.join(os.path.dirname(os.path.abspath(filepath)), f".worker-{task_id}-tmp")
    os.makedirs(temp, exist_ok=True)
    try:
        model.save_weights(os.path.join(temp, os.path.basename(filepath)))
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return None


def save_checkpoint(model, backup_dir, epoch, keep=2):
    """Write ``backup_dir/ckpt-<epoch>`` atomically and prune to the newest ``keep``."""
    os.makedirs(backup_dir, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=backup_dir)
    try:
        weights = os.path.join(temp, WEIGHTS_FILE)
        model.save_weights(weights)
        _fsync_file(weights)
        state = {
            "epoch": int(epoch),
            "size": os.path.getsize(weights),
            "sha256": _sha256(weights),
            "rng_states": [keras.ops.convert_to_numpy(v).tolist() for v in _rng_states(model)],
        }
        _write_synced(os.path.join(temp, STATE_FILE), json.dumps(state))
        _fsync_dir(temp)
        final = os.path.join(backup_dir, f"ckpt-{int(epoch)}")
        if os.path.exists(final):  # re-saving an epoch (e.g. after a resume): replace
            shutil.rmtree(final)
        os.rename(temp, final)
        _fsync_dir(backup_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    for name, _ in _checkpoint_dirs(backup_dir)[keep:]:
        shutil.rmtree(os.path.join(backup_dir, name), ignore_errors=True)
    return final


def latest_valid_checkpoint(backup_dir):
    """``(path, state)`` of the newest checkpoint that verifies, or ``None`` if there is none.

    Corrupt checkpoints are skipped with a warning; if checkpoints exist but none verifies,
    raises ``CorruptCheckpointError`` rather than silently training from scratch.
    """
    problems = []
    for name, _ in _checkpoint_dirs(backup_dir):
        path = os.path.join(backup_dir, name)
        problem = verify_checkpoint(path)
        if problem is None:
            with open(os.path.join(path, STATE_FILE)) as f:
                return path, json.load(f)
        problems.append(f"{path}: {problem}")
        warnings.warn(f"Skipping corrupt checkpoint {path}: {problem}", stacklevel=2)
    if problems:
        raise CorruptCheckpointError(
            "No usable checkpoint in " + backup_dir + ":\n  " + "\n  ".join(problems)
        )
    return None


def _rng_states(model):
    """The model's variables that `save_weights` leaves out: the states of its random
    number generators (noise, augmentation, dropout `SeedGenerator`s). Saved in
    state.json so that a resumed run draws the same random numbers an uninterrupted one
    would (exact resume)."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def verify_checkpoint(path):
    """Return ``None`` if ``path`` is intact, else a sentence saying what is wrong."""
    try:
        with open(os.path.join(path, STATE_FILE)) as f:
            state = json.load(f)
        expected_size, expected_sha = int(state["size"]), state["sha256"]
        if int(state["epoch"]) != int(os.path.basename(os.path.normpath(path)).split("-")[-1]):
            return f"{STATE_FILE} says epoch {state['epoch']}, the directory name disagrees"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable {STATE_FILE} ({type(error).__name__}: {error})"
    weights = os.path.join(path, WEIGHTS_FILE)
    if not os.path.exists(weights):
        return f"missing {WEIGHTS_FILE}"
    size = os.path.getsize(weights)
    if size != expected_size:
        return f"{WEIGHTS_FILE} has {size} bytes, expected {expected_size} (truncated?)"
    if _sha256(weights) != expected_sha:
        return f"{WEIGHTS_FILE} SHA-256 does not match {STATE_FILE} (bytes changed)"
    return None


def _checkpoint_dirs(backup_dir):
    """``[(name, epoch)]`` of ``ckpt-*`` directories, newest first."""
    if not os.path.isdir(backup_dir):
        return []
    found = [(n, int(m.group(1))) for n in os.listdir(backup_dir) if (m := _CKPT.match(n))]
    return sorted(found, key=lambda item: -item[1])


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_synced(path, text):
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
