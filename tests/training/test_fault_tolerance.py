"""Fault tolerance: SIGKILL mid-training and resume; corrupt checkpoints are never loaded."""

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from ptft_keras.training.checkpointing import (
    AtomicBackupAndRestore,
    CorruptCheckpointError,
    save_checkpoint,
    verify_checkpoint,
)
from ptft_keras.training.strategies import get_strategy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "training", "fault_tolerance_script.py")
TIMEOUT_S = 180  # per process; a clean 6-epoch run takes ~10 s on a loaded 2-core machine


def start(out, *args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, SCRIPT, str(out), *args]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc):
    try:
        output = proc.communicate(timeout=TIMEOUT_S)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output[-3000:]
    return output


def wait_for_line(proc, marker):
    """Return ``proc``'s output up to the first line containing ``marker`` (bounded wait).

    A daemon thread keeps draining stdout afterwards so the child never blocks on a pipe.
    """
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    seen, deadline = [], time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if proc.poll() is not None and lines.empty():
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    pytest.fail(f"never saw {marker!r} (rc={proc.returncode}):\n" + "".join(seen)[-3000:])


def sigkill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Final weights of an uninterrupted 6-epoch run of the helper script."""
    out = tmp_path_factory.mktemp("reference")
    finish(start(out, "--epochs", "6"))
    return np.load(out / "weights.npz")


def assert_same_weights(path, reference):
    weights = np.load(path)
    assert sorted(weights.files) == sorted(reference.files)
    for key in reference.files:
        np.testing.assert_allclose(weights[key], reference[key], rtol=1e-6, atol=1e-7)


def logged_epochs(out):
    with open(out / "backup" / "training_log.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f)})


@pytest.mark.tf_only
def test_sigkill_then_restart_resumes_from_last_completed_epoch(tmp_path, reference):
    out = tmp_path / "run"
    first = start(out, "--epochs", "6", "--sleep", "0.15")
    wait_for_line(first, "epoch 3/6")  # printed after the epoch-3 checkpoint is written
    sigkill(first)
    assert first.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists()  # it really died before finishing

    second = finish(start(out, "--epochs", "6"))
    result = json.loads((out / "result.json").read_text())
    resumed = result["restored_epoch"]
    assert 3 <= resumed < 6, second[-2000:]  # not from zero, not after the end
    assert result["epochs_run"] == list(range(resumed, 6))
    assert "epoch 1/6" not in second  # the restarted process did not redo epoch 1
    assert logged_epochs(out) == list(range(6))  # every epoch logged, across both processes
    # Nothing lost: weights, optimizer momentum and step count came back, so the
    # interrupted run ends exactly where the uninterrupted one does.
    assert_same_weights(out / "weights.npz", reference)


@pytest.mark.tf_only
def test_crash_in_the_middle_of_writing_a_checkpoint_keeps_the_previous_one(tmp_path, reference):
    out = tmp_path / "run"
    first = start(out, "--epochs", "6", "--die-in-save", "4")  # dies writing ckpt-4
    first.communicate(timeout=TIMEOUT_S)
    assert first.returncode == -signal.SIGKILL
    backup = out / "backup"
    leftovers = [p.name for p in backup.iterdir() if p.name.startswith(".tmp-ckpt-")]
    assert len(leftovers) == 1  # the half-written checkpoint, never renamed into place
    assert sorted(p.name for p in backup.glob("ckpt-*")) == ["ckpt-2", "ckpt-3"]

    finish(start(out, "--epochs", "6"))
    result = json.loads((out / "result.json").read_text())
    assert result["restored_epoch"] == 3 and result["epochs_run"] == [3, 4, 5]
    assert not any(p.name.startswith(".tmp-ckpt-") for p in backup.iterdir())
    assert_same_weights(out / "weights.npz", reference)


@pytest.mark.tf_only
@pytest.mark.slow
def test_repeated_kills_at_random_moments_never_corrupt_the_resume(tmp_path):
    """Kill 5 times at random moments (~330 kB checkpoints, so some land in a write)."""
    args = ["--epochs", "8", "--width", "4096", "--sleep", "0.02"]
    finish(start(tmp_path / "reference", *args))
    reference = np.load(tmp_path / "reference" / "weights.npz")
    rng = np.random.default_rng(0)
    out = tmp_path / "run"
    for _ in range(5):
        proc = start(out, *args)
        wait_for_line(proc, "epoch")  # first epoch this attempt finished
        time.sleep(float(rng.uniform(0.0, 1.5)))
        sigkill(proc)
    finish(start(out, *args))
    assert_same_weights(out / "weights.npz", reference)


# --- corrupt checkpoints (in process; plain Keras, so these run on JAX too) -----------


def tiny_model():
    with get_strategy("cpu").scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def fit(model, backup_dir, epochs):
    callback = AtomicBackupAndRestore(str(backup_dir), delete_checkpoint=False)
    x = np.arange(24, dtype="float32").reshape(8, 3) / 24.0
    history = model.fit(x, x[:, :2], epochs=epochs, batch_size=4, verbose=0, callbacks=[callback])
    return callback, history


def checkpoints_after_two_epochs(tmp_path):
    backup = tmp_path / "backup"
    model = tiny_model()
    snapshots = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights())
    )
    x = np.arange(24, dtype="float32").reshape(8, 3) / 24.0
    callback = AtomicBackupAndRestore(str(backup), delete_checkpoint=False)
    model.fit(x, x[:, :2], epochs=2, batch_size=4, verbose=0, callbacks=[callback, keep])
    assert sorted(os.listdir(backup)) == ["ckpt-1", "ckpt-2"]
    return backup, snapshots


def truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def flip_bytes(path):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        middle = len(data) // 2
        for i in range(middle, middle + 8):
            data[i] ^= 0xFF
        f.seek(0)
        f.write(data)


@pytest.mark.parametrize("damage, reason", [(truncate, "truncated"), (flip_bytes, "SHA-256")])
def test_damaged_latest_checkpoint_falls_back_to_previous(tmp_path, damage, reason):
    backup, snapshots = checkpoints_after_two_epochs(tmp_path)
    latest = backup / "ckpt-2" / "model.weights.h5"
    size = os.path.getsize(latest)
    damage(latest)
    assert reason in verify_checkpoint(str(backup / "ckpt-2"))
    if damage is flip_bytes:
        assert os.path.getsize(latest) == size  # same size: only the checksum can tell

    model = tiny_model()
    probe = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: probe_weights.append(model.get_weights())
    )
    probe_weights = []
    callback = AtomicBackupAndRestore(str(backup), delete_checkpoint=False)
    x = np.arange(24, dtype="float32").reshape(8, 3) / 24.0
    with pytest.warns(UserWarning, match=f"Skipping corrupt checkpoint .*ckpt-2.*{reason}"):
        history = model.fit(
            x, x[:, :2], epochs=3, batch_size=4, verbose=0, callbacks=[callback, probe]
        )
    assert callback.restored_epoch == 1
    assert history.epoch == [1, 2]
    for loaded, saved in zip(
        probe_weights[0], snapshots[0], strict=True
    ):  # epoch-1 weights came back
        np.testing.assert_array_equal(loaded, saved)


@pytest.mark.parametrize("damage", [truncate, flip_bytes])
def test_no_intact_checkpoint_is_a_clear_error_not_a_fresh_start(tmp_path, damage):
    backup, _ = checkpoints_after_two_epochs(tmp_path)
    for name in ("ckpt-1", "ckpt-2"):
        damage(backup / name / "model.weights.h5")
    model = tiny_model()
    before = model.get_weights()
    with pytest.warns(UserWarning), pytest.raises(CorruptCheckpointError, match="ckpt-1"):
        fit(model, backup, epochs=3)
    for now, then in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)  # nothing was loaded


def test_half_written_checkpoint_is_ignored_and_cleaned(tmp_path):
    backup, _ = checkpoints_after_two_epochs(tmp_path)
    stale = backup / ".tmp-ckpt-crashed"  # what a SIGKILL during save_checkpoint leaves
    stale.mkdir()
    (stale / "model.weights.h5").write_bytes(b"\x89HDF partial")
    callback, history = fit(tiny_model(), backup, epochs=3)
    assert callback.restored_epoch == 2 and history.epoch == [2]
    assert not stale.exists()


def test_save_checkpoint_keeps_newest_and_is_verifiable(tmp_path):
    model = tiny_model()
    for epoch in (1, 2, 3):
        save_checkpoint(model, str(tmp_path), epoch, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-2", "ckpt-3"]
    assert verify_checkpoint(str(tmp_path / "ckpt-3")) is None
    (tmp_path / "ckpt-3" / "state.json").write_text("{not json")
    assert "unreadable state.json" in verify_checkpoint(str(tmp_path / "ckpt-3"))


def test_backup_dir_and_keep_are_validated():
    with pytest.raises(ValueError, match="backup_dir"):
        AtomicBackupAndRestore("")
    with pytest.raises(ValueError, match="keep"):
        AtomicBackupAndRestore("/tmp/x", keep=0)
