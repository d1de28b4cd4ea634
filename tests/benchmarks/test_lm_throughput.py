"""lm_throughput at reduced size, on JAX, in a process where TensorFlow cannot be imported
(as on the GPU machine): it must run, write its JSON and never import TensorFlow."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import lm_throughput

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_reduced_run_on_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "lm.json"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    args = ["--size", "reduced", "--repeats", "1", "--steps", "2", "--block-tensorflow"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.lm_throughput", *args, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ptft_keras / keras_hub tokens/s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["machine"]["backend"] == "jax"
    assert result["tensorflow_imported"] is False
    cfg = result["config"]
    assert cfg["steps"] == 2 and cfg["num_layers"] == lm_throughput.SIZES["reduced"]["num_layers"]
    ours, hub = result["peers"]["ptft_keras"], result["peers"]["keras_hub"]
    # Same shape on both sides: identical parameter counts, hence identical FLOPs/token.
    assert ours["params"] == hub["params"] > 0
    assert (
        ours["flops_per_token"]
        == hub["flops_per_token"]
        == lm_throughput.flops_per_token(
            ours["params"], cfg["num_layers"], cfg["sequence_length"], cfg["hidden_dim"]
        )
    )
    for peer in (ours, hub):
        assert peer["tokens_per_s"]["median"] > 0 and len(peer["tokens_per_s"]["runs"]) == 1
        assert peer["tokens_per_cpu_s"]["median"] > 0
        assert peer["step_ms"] > 0 and peer["achieved_tflops"] > 0
        assert peer["mfu"] is None  # no peak on a CPU: MFU would be meaningless
    assert result["ratio"]["ptft_keras_over_keras_hub"] > 0
    assert result["ratio"]["by_cpu_time"]["per_round_median"] > 0


def test_flops_per_token_formula():
    # GPT-2 small as in the anchor: 6N + 12 * L * T * D.
    assert lm_throughput.flops_per_token(124_000_000, 12, 1024, 768) == (
        6 * 124_000_000 + 12 * 12 * 1024 * 768
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--peers", "ptft_keras,torch_gpt"], "--peers"),
        (["--steps", "3", "--steps-per-execution", "2"], "multiple"),
        (["--repeats", "0"], "--repeats"),
        (["--steps", "0"], "--steps"),
        (["--num-layers", "0"], "--num-layers"),
        (["--hidden-dim", "100", "--num-heads", "3"], "multiple of --num-heads"),
    ],
)
def test_bad_arguments_are_refused(argv, message):
    with pytest.raises(ValueError, match=message):
        lm_throughput.main(argv)
