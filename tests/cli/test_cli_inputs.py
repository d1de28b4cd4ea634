"""Bad inputs as users make them (issue 27): each ends in a `ptft: error:` that names the
problem (exit status 2, no traceback) or is handled correctly, and a command that fails
or is refused changes no file that existed before it.

In-process (`ptft_keras.cli.main`), tiny data: seconds a case.
"""

import json
import os

import keras
import numpy as np
import pytest

from tests.cli.test_cli import ptft_in_process

pytestmark = pytest.mark.tf_only


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`cli(*args)` -> (status, stdout, stderr) of `ptft ARGS` run in `tmp_path`."""

    def run(*args):
        return ptft_in_process(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    return run


def refused(cli, *args):
    """The last stderr line of a refused command (asserts status 2 and the prefix)."""
    status, out, err = cli(*args)
    assert status == 2, (out[-1000:], err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    message = err.strip().splitlines()[-1]
    assert message.startswith("ptft: error: "), err[-3000:]
    return message


def snapshot(folder):
    """{relative path: (size, mtime_ns)} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            stat = os.stat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), folder)] = (
                stat.st_size,
                stat.st_mtime_ns,
            )
    return found


def test_flags_are_checked_before_anything_is_written(digits, tmp_path, cli):
    labeled = digits / "labeled"
    cases = {
        (
            "pretrain",
            "image",
            "--epochs",
            "-1",
        ): "argument --epochs: must be an integer > 0, got '-1'",
        (
            "pretrain",
            "image",
            "--epochs",
            "0",
        ): "argument --epochs: must be an integer > 0, got '0'",
        ("pretrain", "image", "--pretrain-learning-rate", "0"): "--pretrain-learning-rate: must be",
        ("finetune", "--scratch", "--batch-size", "0"): "argument --batch-size: must be",
        ("finetune", "--scratch", "--labels-per-class", "-3"): "got '-3'",
        ("finetune", "--scratch", "--probe-steps", "-5"): "--probe-steps: must be an integer >= 0",
        ("finetune", "--scratch", "--fixmatch-threshold", "1.5"): "> 0 and <= 1, got '1.5'",
        ("finetune", "--scratch", "--epochs", "3"): "--epochs applies to --method other than auto",
        ("finetune", "--scratch", "--method", "probe", "--probe-steps", "5"): (
            "--probe-steps: not used by an image run with --method probe"
        ),
        ("finetune", "--scratch", "--method", "full", "--fixmatch-alignment"): (
            "--fixmatch-alignment: not used by an image run with --method full"
        ),
        ("finetune", "--scratch", "--labels-per-class", "11"): (
            "--labels-per-class 11 is more than some classes hold ('0' has 10"
        ),
    }
    for args, expected in cases.items():
        assert expected in refused(cli, *args, "--data", labeled, "--out", "r"), args
        assert not (tmp_path / "r").exists(), args  # nothing half-made is left behind
    assert "--tokens: must be an integer > 0" in refused(
        cli, "pretrain", "text", "--data", "x.txt", "--tokens", "0", "--out", "r"
    )

    # An empty class folder is an error that names it (not a class silently dropped).
    folders = tmp_path / "folders"
    for name in ("3", "7"):
        (folders / name).mkdir(parents=True)
        for image in sorted((labeled / name).iterdir())[:3]:
            os.link(image, folders / name / image.name)
    (folders / "9").mkdir()
    (folders / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    message = refused(cli, "finetune", "--scratch", "--data", folders, "--out", "r")
    assert "class folder(s) ['9'] hold no images" in message

    # A table row with more fields than the header names the row and how to quote.
    (tmp_path / "t.csv").write_text(
        "text,label\ngood,positive\nthis film, frankly, is fine,positive\n"
    )
    message = refused(cli, "finetune", "--scratch", "--data", "t.csv", "--out", "r")
    assert "row 3 has 4 fields, the header 2 (text, label)" in message
    assert '"this film, frankly, is fine",positive' in message
    (tmp_path / "cr.csv").write_bytes(b'text,label\n"a\rb",positive\nok\r,negative\n')
    assert "not a well-formed CSV row" in refused(
        cli, "finetune", "--scratch", "--data", "cr.csv", "--out", "r"
    )


def test_out_never_deletes_an_input(digits, tmp_path, cli):
    labeled = digits / "labeled"
    status, out, err = cli(
        "pretrain", "image", "--data", labeled, "--epochs", 1, "--latent-dim", 8,
        "--pretrain-batch-size", 16, "--out", "pre",
    )  # fmt: skip
    assert status == 0, err[-3000:]
    assert json.loads((tmp_path / "pre" / "config.json").read_text())["epochs"] == 1
    before, data_before = snapshot(tmp_path / "pre"), snapshot(labeled)
    message = refused(cli, "finetune", "pre", "--data", labeled, "--out", "pre", "--overwrite")
    assert "overlaps PRETRAINED_RUN" in message
    message = refused(cli, "finetune", "pre", "--data", labeled, "--out", labeled / "run")
    assert "overlaps --data" in message
    message = refused(cli, "finetune", "pre", "--data", labeled, "--out", digits, "--overwrite")
    assert "overlaps" in message  # --out holds the data
    assert snapshot(tmp_path / "pre") == before and snapshot(labeled) == data_before


def test_text_runs_predict_evaluate_and_export_contracts(shared_data_dir, tmp_path, cli):
    with open(os.path.join(shared_data_dir, "sst2", "train.tsv"), encoding="utf-8") as f:
        lines = f.readlines()
    (tmp_path / "train.tsv").write_text("".join(lines[:31]))  # 30 rows: under one batch
    status, out, err = cli(
        "finetune", "--scratch", "--data", "train.tsv", "--epochs", 1, "--out", "t",
    )  # fmt: skip
    assert status == 0, err[-3000:]  # one optimizer step in all: a constant rate
    assert json.loads((tmp_path / "t" / "config.json").read_text())["epochs"] == 1

    # predict: arguments are texts; a file is read only with --file.
    (tmp_path / "review.txt").write_text("a gorgeous , witty film\ndull .\n")
    assert "use --file review.txt" in refused(cli, "predict", "t", "review.txt")
    assert "use --file -" in refused(cli, "predict", "t", "-")
    status, out, err = cli("predict", "t", "--file", "review.txt")
    assert status == 0, err[-3000:]
    assert [line.split("\t")[2] for line in out.splitlines()] == [
        "a gorgeous , witty film",
        "dull .",
    ]
    status, out, _ = cli("predict", "t", "review.txt is a title")
    assert status == 0 and out.split("\t")[2].strip() == "review.txt is a title"

    # evaluate keeps earlier results unless --overwrite; export refuses an existing --out.
    assert cli("evaluate", "t", "--data", "train.tsv")[0] == 0
    results = tmp_path / "t" / "evaluation" / "metrics.json"
    before = snapshot(results.parent)
    assert "pass --overwrite" in refused(cli, "evaluate", "t", "--data", "train.tsv")
    assert snapshot(results.parent) == before
    assert cli("evaluate", "t", "--data", "train.tsv", "--overwrite")[0] == 0
    (tmp_path / "exported").mkdir()
    assert "pass --overwrite" in refused(cli, "export", "t", "--out", "exported")

    # A corpus too small for one batch of packed rows: an error that says what to change.
    (tmp_path / "small.txt").write_text("".join(line.split("\t")[1] + "\n" for line in lines[1:41]))
    message = refused(
        cli, "pretrain", "text", "--data", "small.txt", "--vocab-size", 200, "--hidden", 16,
        "--layers", 1, "--heads", 2, "--intermediate", 32, "--steps", 2, "--out", "lm",
    )  # fmt: skip
    assert "fewer than one batch of 64" in message and "--pretrain-batch" in message
    assert not (tmp_path / "lm").exists()


def test_a_model_that_predicts_one_class_is_reported():
    from ptft_keras.cli.data import warn_if_one_class

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, bias_initializer="ones")])
    model.layers[0].kernel.assign(np.zeros((3, 2)))
    model.layers[0].bias.assign([0.0, 1.0])  # always "positive"
    model.label_names = ["negative", "positive"]
    said = []
    assert warn_if_one_class(model, np.random.rand(10, 3), log=said.append) == "positive"
    assert "predicts 'positive' for every one of the 10 training examples" in said[0]
    model.layers[0].kernel.assign([[5.0, -5.0], [0, 0], [0, 0]])
    assert warn_if_one_class(model, np.eye(3)[[0, 1]], log=said.append) is None
