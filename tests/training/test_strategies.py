"""``get_strategy``: names, clear errors, and replicas that train like one device."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from ptft_keras.training import strategies
from ptft_keras.training.strategies import (
    check_global_batch_size,
    get_strategy,
    task_info,
    xla_option,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIRRORED_SCRIPT = os.path.join(ROOT, "tests", "training", "mirrored_script.py")
TIMEOUT_S = 240


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'gpu_farm'.*auto, cpu, one_device, mirrored"):
        get_strategy("gpu_farm")
    with pytest.raises(ValueError, match="expected one of"):
        get_strategy(None)


@pytest.mark.parametrize("name", ["auto", "cpu", "one_device", "One-Device"])
def test_single_device_names_give_one_replica_with_a_scope(name):
    strategy = get_strategy(name)
    assert strategy.num_replicas_in_sync == 1
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.tf_only
def test_same_name_gives_the_same_strategy_object():
    # Two MirroredStrategy objects collide in their collective keys (see _TF_STRATEGIES).
    assert get_strategy("mirrored") is get_strategy("mirrored")
    assert get_strategy("cpu") is get_strategy("CPU")
    assert get_strategy("cpu") is not get_strategy("mirrored")


def test_tpu_without_a_tpu_is_a_clear_error_at_once(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(strategies.glob, "glob", lambda pattern: [])  # not a TPU VM
    with pytest.raises(RuntimeError, match="found no TPU"):
        get_strategy("tpu")


@pytest.mark.tf_only
def test_unreachable_tpu_times_out_instead_of_hanging():
    port = _free_port()  # nothing listens there
    code = (
        "import ptft_keras.training.strategies as s\n"
        "s.TPU_RESOLVE_TIMEOUT_S = 3\n"
        "try:\n    s.get_strategy('tpu')\n"
        "except RuntimeError as e:\n    print('ERROR:', e)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT, TPU_NAME=f"grpc://127.0.0.1:{port}")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR: Strategy 'tpu'" in result.stdout, result.stdout + result.stderr[-2000:]


def test_multi_worker_without_a_cluster_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", raising=False)
    expected = "needs TF_CONFIG" if keras.backend.backend() == "tensorflow" else "JOB_ADDRESSES"
    with pytest.raises(RuntimeError, match=expected):
        get_strategy("multi_worker")


@pytest.mark.tf_only
def test_auto_picks_multi_worker_when_tf_config_lists_a_cluster(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(strategies.glob, "glob", lambda pattern: [])
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategies._auto_name(tf, None) == "one_device"  # this CPU machine
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": TWO_WORKERS, "task": {"index": 1}}))
    assert strategies._auto_name(tf, None) == "multi_worker"  # decided, not created here
    monkeypatch.setenv("TPU_NAME", "local")
    assert strategies._auto_name(tf, None) == "tpu"


@pytest.mark.tf_only
def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster: oops")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        get_strategy("multi_worker")


TWO_WORKERS = {"worker": ["a:1", "b:2"]}
CHIEF_AND_WORKER = {"chief": ["c:0"], "worker": ["a:1"]}


@pytest.mark.parametrize(
    "tf_config, expected",
    [
        (None, (None, 0, True)),  # no cluster: this process is the chief
        ({"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 0}}, ("worker", 0, True)),
        ({"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 1}}, ("worker", 1, False)),
        # With a separate chief task, worker 0 is not the chief.
        ({"cluster": CHIEF_AND_WORKER, "task": {"type": "worker"}}, ("worker", 0, False)),
        ({"cluster": CHIEF_AND_WORKER, "task": {"type": "chief"}}, ("chief", 0, True)),
    ],
)
def test_task_info_finds_the_chief(monkeypatch, tf_config, expected):
    monkeypatch.delenv("KERAS_DISTRIBUTION_PROCESS_ID", raising=False)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert task_info() == expected


def test_global_batch_size_must_split_over_replicas():
    class Two:
        num_replicas_in_sync = 2

    assert check_global_batch_size(64, Two()) == 64
    for bad in (63, 1, 0, "64"):
        with pytest.raises(ValueError, match="multiple of the 2 replicas"):
            check_global_batch_size(bad, Two())


def test_xla_option():
    assert xla_option(True) is True and xla_option(False) is False
    assert xla_option(None) == "auto" and xla_option("auto") == "auto"
    with pytest.raises(ValueError, match="xla must be"):
        xla_option("yes")


@pytest.mark.tf_only
def test_xla_can_be_turned_on_under_a_strategy():
    strategy = get_strategy("mirrored")
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", jit_compile=xla_option(True))
        auto = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        auto.compile(optimizer="sgd", loss="mse")
    assert model.jit_compile is True
    assert auto.jit_compile is False  # Keras' "auto" is off under tf.distribute / on CPU
    history = model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _run_mirrored(backend, shared_data_dir):
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=backend)
    mnist = os.path.join(shared_data_dir, "mnist")
    result = subprocess.run(
        [sys.executable, MIRRORED_SCRIPT, mnist, "--epochs", "2", "--samples", "1024"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# Same global batch (64) over 2 replicas: the mean gradient is the same as on one device,
# so losses and weights may differ only by float summation order. Measured: losses equal
# to 3e-7 relative, weights to 6e-8 absolute; the tolerances below leave room for that.
LOSS_RTOL, WEIGHT_ATOL = 1e-4, 1e-5


@pytest.mark.tf_only
def test_mirrored_on_two_logical_cpus_trains_like_one_device(shared_data_dir):
    result = _run_mirrored("tensorflow", shared_data_dir)
    assert result["cpu_replicas"] == 1 and result["mirrored_replicas"] == 2
    assert result["cpu"][1] < result["cpu"][0]  # it learned (real MNIST digits)
    np.testing.assert_allclose(result["mirrored"], result["cpu"], rtol=LOSS_RTOL)
    assert result["weights_moved"] > 100 * WEIGHT_ATOL
    assert result["max_weight_diff"] < WEIGHT_ATOL
    # keras 3.15 alone fails here with 2 replicas ("attr 'T' of bool", then "AddN must
    # have the same size and shape" for the 3 + 2 split); see strategies._fit_safe.
    assert np.isfinite(result["bool_input_loss"])


def test_jax_data_parallel_on_two_cpu_devices_trains_like_one_device(shared_data_dir):
    pytest.importorskip("jax")
    result = _run_mirrored("jax", shared_data_dir)
    assert result["mirrored_replicas"] == 2 and result["mirrored_kernel_devices"] == 2
    assert result["cpu_kernel_devices"] == 1
    np.testing.assert_allclose(result["mirrored"], result["cpu"], rtol=LOSS_RTOL)
    assert result["max_weight_diff"] < WEIGHT_ATOL
    assert np.isfinite(result["bool_input_loss"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
