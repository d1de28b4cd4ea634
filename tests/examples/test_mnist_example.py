import numpy as np
import pytest

from tests.scripts import load_example

example = load_example("mnist_autoencoder_classifier")
mnist_label_draws = load_example("mnist_label_draws")


@pytest.mark.tf_only  # exports a SavedModel
def test_smoke_run_prints_table_writes_plots_and_exports(tmp_path, capsys):
    out, export = tmp_path / "run", tmp_path / "export"
    argv = ["--smoke", "--output-dir", str(out), "--export-dir", str(export)]
    rows = example.main(argv + ["--budgets", "20"])
    methods = ["frozen encoder", "fine-tune", "+ FixMatch"]
    expected = [(20, init, m) for init in ("pretrained", "scratch") for m in methods]
    assert [(r[0], r[1], r[2]) for r in rows] == expected
    # Seconds of training, yet far above chance (0.10) on the held-out digits: the
    # pretrained encoder's imprinted prototypes alone (measured 0.62 on this smoke run).
    assert rows[0][3] >= 0.3, rows
    printed = capsys.readouterr().out
    assert "Test accuracy" in printed and "+ FixMatch" in printed
    for name in ("results.png", "reconstructions.png"):
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    import tensorflow as tf

    loaded = tf.saved_model.load(str(export))  # keep a reference while serving
    out = loaded.signatures["serving_default"](images=tf.zeros((2, 28, 28), tf.uint8))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert set(v.decode() for v in out["label"].numpy()) <= set("0123456789")

    # An existing export is never silently overwritten: refused before any training.
    with pytest.raises(SystemExit):
        example.main(argv)
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_bad_budget_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--budgets", "100,lots"])
    assert "--budgets" in capsys.readouterr().err


def test_label_draws_smoke_pairs_every_draw_and_stage(capsys):
    results = mnist_label_draws.main(["--smoke", "--max-shifts", "2,0", "--budgets", "10"])
    stages = ("frozen encoder", "fine-tune")
    assert sorted(results) == sorted(
        (10, shift, stage, init)
        for shift in (0, 2)
        for stage in stages
        for init in ("pretrained", "scratch")
    )
    assert all(len(accs) == 2 for accs in results.values())  # --smoke: 2 draws
    printed = capsys.readouterr().out
    assert "paired difference" in printed and "1-NN on pretrained features: digit" in printed


def test_label_draws_colour_smoke_runs_fixmatch_on_rgb(capsys):
    results = mnist_label_draws.main(["--smoke", "--colour", "--budgets", "10", "--fixmatch"])
    assert {key[2] for key in results} == {"frozen encoder", "fine-tune", "+ FixMatch"}
    assert "1-NN on pretrained features: digit" in capsys.readouterr().out
