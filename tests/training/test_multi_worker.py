"""``multi_worker``: two real worker processes on 127.0.0.1, each with its own TF_CONFIG.

Each worker runs ``tests/training/multi_worker_script.py`` (``model.fit`` under
``MultiWorkerMirroredStrategy`` with ``training_callbacks``). Every wait is bounded: a
worker whose peer died would block in a collective forever, so the test kills both.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from ptft_keras.training.checkpointing import verify_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "training", "multi_worker_script.py")
TIMEOUT_S = 240  # two TF start-ups on a loaded 2-core machine; a clean run takes ~15 s


def free_ports(n):
    """Ask the OS for ``n`` distinct free ports (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_workers(out, n=2, epochs=2, extra=(), expect_rc=0):
    ports = free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(n):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CONFIG=json.dumps(tf_config))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        procs.append(
            subprocess.Popen(
                [sys.executable, SCRIPT, str(out), "--epochs", str(epochs), *extra],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for proc in procs:  # never leave a worker blocked in a collective
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == expect_rc, output[-3000:]
    return outputs


def run_reference(out, epochs=2):
    """The same training on one device in one process (no TF_CONFIG)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    result = subprocess.run(
        [sys.executable, SCRIPT, str(out), "--epochs", str(epochs), "--strategy=cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return np.load(os.path.join(out, "weights-0.npz"))


@pytest.mark.tf_only
def test_two_workers_train_in_sync_and_only_chief_keeps_files(tmp_path):
    outputs = run_workers(tmp_path / "cluster")
    assert "replicas=2" in outputs[0] and "chief=True" in outputs[0], outputs[0][-2000:]
    assert "chief=False" in outputs[1], outputs[1][-2000:]
    # A bool input with a 3 + 2 split: keras 3.15 alone fails (see strategies._fit_safe).
    bool_losses = [re.search(r"bool_loss=(\S+)", out).group(1) for out in outputs]
    assert bool_losses[0] == bool_losses[1] and np.isfinite(float(bool_losses[0]))

    w0 = np.load(tmp_path / "cluster" / "weights-0.npz")
    w1 = np.load(tmp_path / "cluster" / "weights-1.npz")
    names = [k for k in w0.files if k != "loss"]
    assert len(names) == 4  # two Dense layers: kernel + bias each
    for name in names:  # all-reduced updates: bit-identical on both workers
        np.testing.assert_array_equal(w0[name], w1[name])
    np.testing.assert_array_equal(w0["loss"], w1["loss"])
    assert w0["loss"][-1] < w0["loss"][0]

    # Same global batch on one device gives the same training (up to float summation order).
    ref = run_reference(tmp_path / "reference")
    for name in names:
        np.testing.assert_allclose(w0[name], ref[name], rtol=1e-4, atol=1e-5)

    # Chief: per-epoch checkpoints and the final weights; the worker's temp dirs are gone.
    backup = tmp_path / "cluster" / "backup"
    assert sorted(os.listdir(backup)) == ["ckpt-1", "ckpt-2", "training_log.csv"]
    assert verify_checkpoint(str(backup / "ckpt-2")) is None
    assert (tmp_path / "cluster" / "model.weights.h5").is_file()
    leftovers = [p for p in (tmp_path / "cluster").rglob("*") if "worker-" in p.name]
    assert leftovers == []


@pytest.mark.tf_only
@pytest.mark.slow
def test_killed_cluster_resumes_from_the_chiefs_checkpoint(tmp_path):
    """Both workers die right after epoch 2's backup; the restarted cluster resumes at 2."""
    out = tmp_path / "cluster"
    run_workers(out, epochs=4, extra=["--die-after-epoch", "2"], expect_rc=-signal.SIGKILL)
    assert not (out / "weights-0.npz").exists()
    outputs = run_workers(out, epochs=4)
    for output in outputs:
        assert "resumed_from=2 epochs_run=[2, 3] done" in output, output[-2000:]
    w0, w1 = np.load(out / "weights-0.npz"), np.load(out / "weights-1.npz")
    ref = run_reference(tmp_path / "reference", epochs=4)
    for name in (k for k in w0.files if k != "loss"):
        np.testing.assert_array_equal(w0[name], w1[name])
        np.testing.assert_allclose(w0[name], ref[name], rtol=1e-4, atol=1e-5)
