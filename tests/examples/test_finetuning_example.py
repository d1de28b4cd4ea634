"""examples/finetuning_methods.py: every method end to end on the real data.

The MNIST smoke tests run the real pipeline shrunk to seconds; the slow test runs both
tasks with the SST-2 LM pretrained on a smaller budget than the example's default (1M
tokens instead of 4M) and checks every row against its measurement (docs/finetuning.md).
It is also the SST-2 path's test (an SST-2 `--smoke` test, 12.5 min on the shared
machine, checked no accuracy).
"""

import os

import keras
import pytest

from ptft_keras.training.methods import METHODS
from tests.scripts import load_example


def _example():
    return load_example("finetuning_methods")


def _check(result, out, task):
    """What holds at any budget: the methods, their trainable counts, the LoRA merge."""
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == list(METHODS)
    full = rows["full"]["trainable"]
    assert rows["lora"]["trainable"] <= 0.05 * full  # LoRA trains at most 5% of full FT
    for method in ("probe", "bitfit", "adapters", "lora"):
        assert rows[method]["trainable"] < full
    for method in ("lp-ft", "gradual", "llrd"):
        assert rows[method]["trainable"] == full  # end with everything trainable
    for row in rows.values():
        assert row["seconds"] > 0
    merge = result["merge"]
    assert merge["merged_max_abs_diff"] < 1e-4
    if keras.backend.backend() == "tensorflow":
        assert merge["savedmodel_lora_variables"] == 0
        assert merge["savedmodel_max_abs_diff"] < 1e-4
    assert f"| lora | {rows['lora']['trainable']:,} |" in out and f"{task} LoRA merge check" in out
    return rows


@pytest.mark.tf_only  # MirroredStrategy is tf.distribute
def test_mnist_smoke_under_a_mirrored_strategy(tmp_path, capsys, monkeypatch):
    # The smoke run, under a MirroredStrategy of one replica on this machine (one run, not
    # one with and one without: the same code path, ~30 s of the default suite each).
    # Every model (and its LoRA/adapter and optimizer variables) must be built inside the
    # strategy's scope, or Keras refuses to train.
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
    rows = _check(example.main(argv)["mnist"], capsys.readouterr().out, "mnist")
    # The first build only counts parameters; every fine-tuned model is built in scope.
    assert in_scope[1:] and all(in_scope[1:]), in_scope
    # 100 labels, linear head on 64 features: 64 * 10 + 10 trainable for the probe.
    assert rows["probe"]["trainable"] == 650
    # 1 pretraining epoch on 1,000 images and 4 epochs of 100 labels, yet full
    # fine-tuning is far above chance (0.10). FLOOR-MNIST-SMOKE
    assert rows["full"]["accuracy"] >= 0.35, rows["full"]
    assert os.path.exists(tmp_path / "mnist_lora.npz")


# Seed 0 of `--pretrain-tokens 1000000` (the rest default), measured 2026-12-06
# (docs/finetuning.md): MNIST test accuracy (2,000 digits), SST-2 dev accuracy (872).
MNIST = {"probe": 0.6815, "full": 0.6700, "lp-ft": 0.6970, "gradual": 0.6990,
         "llrd": 0.6590, "bitfit": 0.6895, "adapters": 0.6765, "lora": 0.6825}  # fmt: skip
# At 1M tokens only the methods that train the whole backbone learn SST-2; with it frozen
# (probe, BitFit, adapters, LoRA) the LM's features are at chance (0.48-0.51), so those
# rows are checked against the backbone-training ones, not against an absolute floor.
SST2_BACKBONE = {"full": 0.6078, "lp-ft": 0.6101, "gradual": 0.6158, "llrd": 0.6330}
SST2_FROZEN = {"probe": 0.4931, "bitfit": 0.5057, "adapters": 0.4817, "lora": 0.5149}
# Margins: MNIST 0.04 (seed 1, another split and draw, moved rows by up to +0.09; a rerun
# of seed 0 differs only by nondeterministic float order); SST-2 0.05, as the LM itself is
# pretrained again (seed 1 on the same LM: full 0.5849).


@pytest.mark.slow
@pytest.mark.tf_only
@pytest.mark.skip(
    reason="issue 26 open: its one run (2026-12-06, CI clone, two other test runs beside it) "
    "hit pytest's 900 s limit before any assertion, so these floors were never checked "
    "against a finished run; re-measure on an idle machine, then drop this skip"
)
def test_every_method_above_its_measured_floor(shared_data_dir, tmp_path, capsys):
    argv = ["--pretrain-tokens", "1000000", "--output-dir", str(tmp_path),
            "--sst2-data-dir", os.path.join(shared_data_dir, "sst2"),
            "--corpus", os.path.join(shared_data_dir, "imdb_unsup")]  # fmt: skip
    result = _example().main(argv)
    out = capsys.readouterr().out
    mnist, sst2 = (_check(result[task], out, task) for task in ("mnist", "sst2"))
    assert sst2["probe"]["trainable"] == 128 * 2 + 2  # the recipe's width, 2 classes
    low = {
        m: (mnist[m]["accuracy"], v) for m, v in MNIST.items() if mnist[m]["accuracy"] < v - 0.04
    }
    low.update({m: (sst2[m]["accuracy"], v) for m, v in SST2_BACKBONE.items()
                if sst2[m]["accuracy"] < v - 0.05})  # fmt: skip
    assert not low, low  # method: (accuracy now, measured)
    # Measured gap 0.6078 - 0.5149 = 0.093 between the worst backbone-training row and
    # the best frozen-backbone one.
    worst = min(sst2[m]["accuracy"] for m in SST2_BACKBONE)
    best_frozen = max(sst2[m]["accuracy"] for m in SST2_FROZEN)
    assert worst >= best_frozen + 0.03, {m: r["accuracy"] for m, r in sst2.items()}
