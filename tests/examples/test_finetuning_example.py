"""examples/finetuning_methods.py: every method runs end to end on the real data (--smoke)."""

import os

import keras
import pytest

from ptft_keras.training.methods import METHODS
from tests.scripts import load_example


def _example():
    return load_example("finetuning_methods")


def _check(result, capsys, task):
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == list(METHODS)
    full = rows["full"]["trainable"]
    # Parameter-efficient methods train a small share; LoRA at most 5% of full FT.
    assert rows["lora"]["trainable"] <= 0.05 * full
    for method in ("probe", "bitfit", "lora"):
        assert rows[method]["trainable"] < rows["full"]["trainable"]
    for method in ("lp-ft", "gradual", "llrd"):
        assert rows[method]["trainable"] == full  # end with everything trainable
    for row in rows.values():
        assert row["seconds"] > 0
    # Seconds of training on real data (1 pretraining epoch, 4 fine-tuning epochs), yet
    # full fine-tuning is far above chance: 0.10 (MNIST) / 0.50 (SST-2). Measured on the
    # MNIST smoke run: probe 0.145, full 0.56, LP-FT 0.485, gradual 0.50, LLRD 0.66,
    # BitFit 0.20, adapters 0.37, LoRA 0.385.
    floor = {"mnist": 0.35, "sst2": 0.5}[task]
    assert rows["full"]["accuracy"] >= floor, rows["full"]
    merge = result["merge"]
    assert merge["merged_max_abs_diff"] < 1e-4
    if keras.backend.backend() == "tensorflow":
        assert merge["savedmodel_lora_variables"] == 0
        assert merge["savedmodel_max_abs_diff"] < 1e-4
    out = capsys.readouterr().out
    assert f"| lora | {rows['lora']['trainable']:,} |" in out and f"{task} LoRA merge check" in out


def test_mnist_smoke(tmp_path, capsys):
    result = _example().main(["--task", "mnist", "--smoke", "--output-dir", str(tmp_path)])
    _check(result["mnist"], capsys, "mnist")
    # 100 labels, linear head on 64 features: 64 * 10 + 10 trainable for the probe.
    assert result["mnist"]["rows"][0]["trainable"] == 650
    assert os.path.exists(tmp_path / "mnist_lora.npz")


@pytest.mark.slow
@pytest.mark.tf_only
def test_sst2_smoke(shared_data_dir, tmp_path, capsys):
    argv = [
        "--task",
        "sst2",
        "--smoke",
        "--output-dir",
        str(tmp_path),
        "--sst2-data-dir",
        os.path.join(shared_data_dir, "sst2"),
    ]
    result = _example().main(argv)
    _check(result["sst2"], capsys, "sst2")


@pytest.mark.tf_only  # MirroredStrategy is tf.distribute
def test_mnist_smoke_under_a_mirrored_strategy(tmp_path, capsys, monkeypatch):
    # One replica on this machine, but every model (and its LoRA/adapter and optimizer
    # variables) must be built inside the strategy's scope, or Keras refuses to train.
    import tensorflow as tf

    from ptft_keras.training import compare

    in_scope, run_comparison = [], compare.run_comparison

    def recording_run_comparison(build_model, *args, **kwargs):
        def build():
            in_scope.append(tf.distribute.has_strategy())
            return build_model()

        return run_comparison(build, *args, **kwargs)

    example = _example()
    monkeypatch.setattr(example, "run_comparison", recording_run_comparison)
    argv = ["--task", "mnist", "--smoke", "--output-dir", str(tmp_path), "--strategy", "mirrored"]
    _check(example.main(argv)["mnist"], capsys, "mnist")
    # The first build only counts parameters; every fine-tuned model is built in scope.
    assert in_scope[1:] and all(in_scope[1:]), in_scope
