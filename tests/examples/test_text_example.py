"""examples/text_sentiment.py: the --smoke run end to end, and a slow real-data check."""

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ptft_keras.cli.runs import BACKWARD_LM_FILE, load_text_lm, read_config  # noqa: E402
from tests.scripts import load_example  # noqa: E402

pytestmark = pytest.mark.tf_only


def _example():
    return load_example("text_sentiment")


def test_smoke_run_trains_prints_table_and_exports(shared_data_dir, tmp_path, capsys):
    example = _example()
    export = str(tmp_path / "saved_models")
    argv = [
        "--smoke",
        "--data-dir",
        f"{shared_data_dir}/sst2",
        "--export-dir",
        export,
        "--backup-dir",
        str(tmp_path / "backup"),
        "--tfidf",
        "--save-lm",
        str(tmp_path / "lm"),
    ]
    rows = example.main(argv)
    assert [r["budget"] for r in rows] == [20, "all"]
    assert all(set(r) == {"budget", "seed", "pretrained", "scratch", "tfidf"} for r in rows)
    out = capsys.readouterr().out
    assert "SST-2 dev accuracy" in out and "pretrained" in out and "tf-idf" in out
    for budget in ("20", "all"):  # every budget's pretrained classifier is exported
        path = os.path.join(export, f"sst2_{budget}")
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isfile(os.path.join(path, "assets", "tokenizer", "vocabulary.txt"))
    assert os.path.isfile(os.path.join(tmp_path, "backup", "pretrain", "training_log.csv"))
    # No silent overwrite: a second run refuses before any training.
    with pytest.raises(FileExistsError, match="--overwrite"):
        example.main(argv)
    # --save-lm wrote the run directory `ptft pretrain text` writes (`ptft finetune` reads
    # it): a finished text pretrain run whose LM saw the smoke budget, 20,000 tokens
    # rounded down to whole steps of 64 x 128 (16,384).
    config = read_config(str(tmp_path / "lm"), kind="pretrain")
    assert (config["modality"], config["objective"], config["tokens"]) == ("text", "causal", 16384)
    # The saved tokenizer + LM are reused without pretraining again, and give the same
    # classifiers: the same accuracies, draw by draw (measured: 0.44 / 0.47 at 20 labels,
    # 0.52 / 0.41 at all; a lost weight or a different tokenizer changes them).
    again = example.main(
        [
            "--smoke",
            "--data-dir",
            f"{shared_data_dir}/sst2",
            "--no-export",
            "--load-lm",
            str(tmp_path / "lm"),
        ]
    )
    assert "pretraining a " not in capsys.readouterr().out
    scores = lambda rs: [(r["budget"], r["pretrained"], r["scratch"]) for r in rs]  # noqa: E731
    assert scores(again) == scores(rows)


def test_smoke_masked_lm_with_layer_decay(shared_data_dir, capsys):
    example = _example()
    rows = example.main(
        [
            "--smoke",
            "--data-dir",
            f"{shared_data_dir}/sst2",
            "--no-export",
            "--objective",
            "masked",
            "--mask-rate",
            "0.4",
            "--corpus",
            "sst2",
            "--layer-decay",
            "0.5",
        ]
    )
    assert [r["budget"] for r in rows] == [20, "all"]  # --smoke sets the budgets
    out = capsys.readouterr().out
    assert "pretraining a masked LM" in out and "SST-2 train sentences" in out


def test_smoke_bidirectional_pairs_a_backward_lm(shared_data_dir, tmp_path, capsys):
    """--bidirectional: a backward LM too, each arm the forward + backward ensemble, saved
    and reloaded beside the forward LM, exported as one raw-string model."""
    example = _example()
    common = ["--smoke", "--data-dir", f"{shared_data_dir}/sst2", "--bidirectional"]
    export = str(tmp_path / "saved_models")
    lm_dir = str(tmp_path / "lm")
    rows = example.main([*common, "--export-dir", export, "--save-lm", lm_dir])
    out = capsys.readouterr().out
    assert "pretraining a backward causal LM" in out and "(forward + backward)" in out
    assert "| pre fwd | pre bwd" in out  # the table's member columns
    pairs_and_members = ["pretrained", "pretrained_forward", "pretrained_backward"]
    pairs_and_members += ["scratch", "scratch_forward", "scratch_backward"]
    assert all(set(r) == {"budget", "seed", *pairs_and_members} for r in rows)
    assert os.path.isfile(os.path.join(lm_dir, BACKWARD_LM_FILE))
    assert os.path.isfile(os.path.join(export, "sst2_all", "saved_model.pb"))
    # Both LMs come back from the run directory (the --load-lm path reads them with
    # load_text_lm; a forward LM reloaded through --load-lm gives the very same scores in
    # test_smoke_run_trains_prints_table_and_exports, so a second bidirectional run, ~1 min
    # of the default suite, is not repeated here).
    _, forward, backward = load_text_lm(lm_dir, backward=True)
    assert type(backward) is type(forward) and backward.count_params() == forward.count_params()
    pairs = zip(forward.get_weights(), backward.get_weights(), strict=True)
    assert any(not np.array_equal(f, b) for f, b in pairs)  # two LMs, not one saved twice
    os.remove(os.path.join(lm_dir, BACKWARD_LM_FILE))
    with pytest.raises(FileNotFoundError, match="no backward LM at"):
        example.main([*common, "--no-export", "--load-lm", lm_dir])
    with pytest.raises(SystemExit):
        example.main([*common, "--objective", "masked"])


def test_bad_budget_is_rejected_clearly(shared_data_dir, tmp_path):
    example = _example()
    with pytest.raises(ValueError, match="budget"):
        example.main(
            ["--smoke", "--data-dir", f"{shared_data_dir}/sst2", "--no-export", "--budgets", "7"]
        )


# The default recipe (issue 13): a causal LM pretrained on the 48,538 unlabeled IMDb
# reviews for 14M tokens, then 1,000 SST-2 labels, dev accuracy (docs/text.md). Measured
# 2026-12-02 with one such LM: draws 0 / 1 / 2 pretrained 0.695 / 0.721 / 0.726 (mean
# 0.714), scratch 0.639 / 0.655 / 0.653 (gain +0.056 / +0.067 / +0.073), TF-IDF 0.703 /
# 0.704 / 0.688 (mean 0.698). The per-draw floors sit under draw 0 by a margin for a
# freshly pretrained LM and thread-order nondeterminism; a classifier that did not get the
# pretrained weights scores ~0.64-0.65. The mean over the three draws must beat TF-IDF's
# (the "Done when"); the issue's +5 points over TF-IDF needs the 28M-token flag
# (README), which is too long for CI.
FLOORS = {1000: (0.665, 0.03)}  # budget: (pretrained accuracy floor, pretrained - scratch)
SEEDS = (0, 1, 2)


# Not in CI (`long`: `make test-long`). Its pretraining measured 2026-12-07 on the 2-core
# machine: 13,991,936 tokens in 3,118 s (~6,300 tokens/s once alone, 4,000-4,500 with
# another slow test beside it), where ~14 min was measured before; with the fine-tunes the
# test takes about an hour, more than CI's slow tier can hold (CI timed out at 5,400 s).
# The model step alone slowed as much, keras-hub's GPT-2 too (docs/text.md).
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(5400)
def test_default_recipe_beats_scratch_and_tfidf(shared_data_dir):
    """The default pretraining on the IMDb corpus, then 1,000-label fine-tunes on three
    label draws beside scratch and TF-IDF."""
    example = _example()
    imdb = os.path.join(shared_data_dir, "imdb_unsup")
    rows = example.main(
        ["--data-dir", f"{shared_data_dir}/sst2", "--corpus", imdb, "--budgets", "1000",
         "--seeds", ",".join(map(str, SEEDS)), "--tfidf", "--no-export"]
    )  # fmt: skip
    assert [(row["budget"], row["seed"]) for row in rows] == [(1000, s) for s in SEEDS]
    for row in rows:
        pretrained_floor, gain_floor = FLOORS[row["budget"]]
        assert row["pretrained"] >= pretrained_floor, row
        assert row["pretrained"] - row["scratch"] >= gain_floor, row
    mean = lambda key: sum(row[key] for row in rows) / len(rows)
    assert mean("pretrained") > mean("tfidf"), rows
