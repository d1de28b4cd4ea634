"""examples/text_sentiment.py: the --smoke run end to end, and a slow real-data check."""

import importlib.util
import os

import pytest

pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tf_only

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "text_sentiment.py")


def _example():
    spec = importlib.util.spec_from_file_location("text_sentiment", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_trains_prints_table_and_exports(shared_data_dir, tmp_path, capsys):
    example = _example()
    export = str(tmp_path / "saved_models" / "sst2")
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
    for row in rows:
        for key in ("pretrained", "scratch", "tfidf"):
            assert 0.0 <= row[key] <= 1.0
    out = capsys.readouterr().out
    assert "SST-2 dev accuracy" in out and "pretrained" in out and "tf-idf" in out
    assert os.path.isfile(os.path.join(export, "saved_model.pb"))
    assert os.path.isfile(os.path.join(export, "assets", "tokenizer", "vocabulary.txt"))
    assert os.path.isfile(os.path.join(tmp_path, "backup", "pretrain", "training_log.csv"))
    # No silent overwrite: a second run refuses before any training.
    with pytest.raises(FileExistsError, match="--overwrite"):
        example.main(argv)
    # The saved tokenizer + LM are reused without pretraining again.
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
    assert [r["budget"] for r in again] == [20, "all"]


def test_bad_budget_is_rejected_clearly(shared_data_dir, tmp_path):
    example = _example()
    with pytest.raises(ValueError, match="budget"):
        example.main(
            ["--smoke", "--data-dir", f"{shared_data_dir}/sst2", "--no-export", "--budgets", "7"]
        )


PRETRAINED_FLOOR_1000 = 0.64  # measured 0.665
GAIN_FLOOR_1000 = 0.01  # measured +0.038


@pytest.mark.slow
def test_pretraining_beats_scratch_with_1000_labels(shared_data_dir):
    """The default recipe without the all-labels fine-tunes (~6-7 min on 2 idle cores).

    Full tokenizer, full causal-LM pretraining and the 1,000-label fine-tunes, exactly as
    the default run; only the budget "all" is skipped. Measured (README `text`): pretrained
    66.5%, scratch 62.7%. The floors sit below those by a margin for thread-order
    nondeterminism; they are NOT the project's goal (+5 points and > 69.7%), which this
    recipe does not reach yet.
    """
    example = _example()
    rows = example.main(
        ["--data-dir", f"{shared_data_dir}/sst2", "--budgets", "1000", "--no-export"]
    )
    (row,) = rows
    assert row["pretrained"] >= PRETRAINED_FLOOR_1000, row
    assert row["pretrained"] - row["scratch"] >= GAIN_FLOOR_1000, row
