"""The `ptft` command line: help, errors users cause, run directories, kill -9 + --resume.

Each command runs as a subprocess (`python -m ptft_keras.cli`), as users run it. The
end-to-end walkthroughs on real data are in test_cli_end_to_end.py (slow).
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ptft(*args, cwd, check=True, timeout=900):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    run = subprocess.run(
        [sys.executable, "-m", "ptft_keras.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd),
        env=env,
    )
    if check:
        assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    return run


def ptft_in_process(*args, cwd, monkeypatch, capsys):
    """`ptft ARGS` through `ptft_keras.cli.main` in this process: (status, stdout, stderr).

    For checks of argument handling and error messages, which need no fresh process; the
    subprocess path (`ptft`) is still run once per test below, as users run it.
    """
    from ptft_keras.cli import main

    monkeypatch.chdir(cwd)
    capsys.readouterr()  # drop earlier output
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit:  # argparse: --help, and usage errors
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def test_help_reads_well(tmp_path, monkeypatch, capsys):
    top = ptft("--help", cwd=tmp_path).stdout  # as users run it
    for command in ("pretrain", "finetune", "evaluate", "export", "predict", "demo-data"):
        assert command in top

    def help_text(*command):
        status, out, _ = ptft_in_process(
            *command, "--help", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
        )
        assert status == 0
        return out

    finetune = help_text("finetune")
    for flag in ("--unlabeled", "--method", "--semi-supervised", "--text-column", "--scratch"):
        assert flag in finetune
    assert "--steps" in help_text("pretrain", "text")


def test_errors_users_cause_are_named(digits, tmp_path, monkeypatch, capsys):
    # As users run it: a subprocess, exit status 2, the message on stderr's last line.
    run = ptft("pretrain", "image", "--data", "nowhere", "--out", "r", cwd=tmp_path, check=False)
    assert run.returncode == 2, (run.stdout, run.stderr[-2000:])
    assert run.stderr.strip().splitlines()[-1].startswith("ptft: error: "), run.stderr[-2000:]
    assert "'nowhere' does not exist" in run.stderr
    assert not (tmp_path / "r").exists()  # nothing half-made is left behind

    def error(*args):  # the same path in-process: many cases, one TensorFlow import
        status, out, err = ptft_in_process(
            *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
        )
        assert status == 2, (out, err[-2000:])
        message = err.strip().splitlines()[-1]
        assert message.startswith("ptft: error: "), err[-2000:]
        return message

    (tmp_path / "empty").mkdir()
    assert "No images found" in error("pretrain", "image", "--data", "empty", "--out", "r")
    colour_size = error("demo-data", "mnist", "--colour", "--size", "20", "--out", "d")
    assert "--size must be >= 28 with --colour, got 20" in colour_size
    assert not (tmp_path / "d").exists()
    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    os.link(next((digits / "labeled" / "3").iterdir()), one / "a.png")
    assert "at least 2 classes" in error("finetune", "--scratch", "--data", "one", "--out", "r")
    (tmp_path / "t.csv").write_text("text,label\nhello,a\nbye,b\n")
    assert "no label column 'mood'" in error(
        "finetune", "--scratch", "--data", "t.csv", "--label-column", "mood", "--out", "r"
    )
    assert "This is a text run" in error("pretrain", "text", "--data", digits, "--out", "r")
    assert "This is an image run" in error("pretrain", "image", "--data", "t.csv", "--out", "r")
    assert "is not a ptft run directory" in error(
        "finetune", "empty", "--data", "t.csv", "--out", "r"
    )
    assert "needs a PRETRAINED_RUN" in error("finetune", "--data", "t.csv", "--out", "r")
    labeled = digits / "labeled"
    assert "fixmatch is not for text data; use one of uda or none" in error(
        "finetune", "--scratch", "--data", "t.csv", "--semi-supervised", "fixmatch", "--out", "r"
    )
    assert "uda is not for image data" in error(
        "finetune", "--scratch", "--data", labeled, "--semi-supervised", "uda", "--out", "r"
    )
    assert "fixmatch needs --unlabeled" in error(
        "finetune", "--scratch", "--data", labeled, "--semi-supervised", "fixmatch", "--out", "r"
    )


def _weights(path):
    import keras

    import ptft_keras  # noqa: F401  registers the model classes for load_model

    model = keras.saving.load_model(str(path), compile=False)
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_kill_9_during_pretrain_then_resume_ends_with_the_same_weights(digits, tmp_path):
    command = [
        "pretrain",
        "image",
        "--data",
        digits / "labeled",
        "--epochs",
        5,
        "--pretrain-batch-size",
        16,
        "--latent-dim",
        8,
    ]
    ptft(*command, "--out", tmp_path / "whole", cwd=tmp_path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "ptft_keras.cli", *map(str, command), "--out", str(run_dir)]
    process = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = run_dir / "checkpoints" / "pretrain" / "ckpt-2"
    deadline = time.time() + 600
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # kill -9, mid-run
    process.wait()
    assert checkpoint.exists() and not (run_dir / "autoencoder.keras").exists()
    refused = ptft(*command, "--out", run_dir, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    # The same paths written differently (relative, "./"): the same run.
    relative = [*command[:3], os.path.relpath(digits / "labeled", tmp_path), *command[4:]]
    resumed = ptft(*relative, "--out", "./killed", "--resume", cwd=tmp_path)
    assert "resuming after epoch" in resumed.stdout
    epochs = [json.loads(line)["epoch"] for line in open(run_dir / "metrics.jsonl")]
    assert epochs[-1] == 5 and epochs[0] == 1  # logs of both processes, one per epoch
    for a, b in zip(
        _weights(run_dir / "autoencoder.keras"),
        _weights(tmp_path / "whole" / "autoencoder.keras"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resumed"] and config["data"]["files"] == 100
    changed = ptft(
        *command[:-2], "--latent-dim", 9, "--out", run_dir, "--resume", cwd=tmp_path, check=False
    )
    assert changed.returncode == 2 and "latent_dim" in changed.stderr


@pytest.fixture
def sst2_tables(shared_data_dir, tmp_path_factory):
    """32 training and 16 test rows of the real SST-2 training table."""
    root = tmp_path_factory.mktemp("tables")
    with open(os.path.join(shared_data_dir, "sst2", "train.tsv"), encoding="utf-8") as f:
        lines = f.readlines()
    (root / "train.tsv").write_text("".join(lines[:33]))
    (root / "test.tsv").write_text(lines[0] + "".join(lines[33:49]))
    return root


# Every method's trainable share is checked in-process on the own TextClassifier
# (tests/training/test_methods.py); through the CLI, the three whose run saves or stages
# differently (staged fits, adapter layers, LoRA matrices) - each CLI case costs 20-60 s.
@pytest.mark.parametrize("method", ("lp-ft", "adapters", "lora"))
def test_methods_through_the_cli_on_the_own_text_backbone(
    method, sst2_tables, tmp_path, monkeypatch, capsys
):
    # --scratch: the toolkit's own text classifier without a pretrain run, through the same
    # `_finetune_text` -> `training.methods.prepare` path a pretrained run takes.
    run = tmp_path / method
    status, out, err = ptft_in_process(
        "finetune", "--scratch", "--data", sst2_tables / "train.tsv", "--method", method,
        "--epochs", 1, "--out", run, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert status == 0, (out, err[-3000:])
    assert f"fine-tuning with --method {method} for 1 epochs" in out
    assert json.loads((run / "config.json").read_text())["method"] == method
    status, out, err = ptft_in_process(
        "evaluate", run, "--data", sst2_tables / "test.tsv",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert status == 0 and out.splitlines()[-1].startswith("accuracy "), (out, err[-3000:])
    assert (run / "lora.npz").exists() == (method == "lora")


def test_a_text_finetune_stopped_mid_run_resumes_to_the_same_losses(
    sst2_tables, tmp_path, monkeypatch, capsys
):
    # The crash is a KeyboardInterrupt after the epoch-3 checkpoint, in-process (the
    # SIGKILL path of a subprocess is the pretrain test's above): the resumed run must
    # draw the same batches, rates and random numbers as the uninterrupted one.
    from ptft_keras.training import checkpointing

    tiny = ("--hidden", 16, "--layers", 1, "--heads", 2, "--intermediate", 32)
    (tmp_path / "corpus.txt").write_text(
        "".join(line.split("\t")[1] + "\n" for line in open(sst2_tables / "train.tsv"))[:-1] * 8
    )

    def cli(*args):
        status, out, err = ptft_in_process(
            *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
        )
        assert status == 0, (out[-2000:], err[-3000:])

    cli("pretrain", "text", "--data", "corpus.txt", "--vocab-size", 200, *tiny,
        "--pretrain-batch", 4, "--steps", 2, "--out", "lm")  # fmt: skip
    finetune = ("finetune", "lm", "--data", sst2_tables / "train.tsv", "--epochs", 6)
    cli(*finetune, "--out", "whole")
    save = checkpointing.AtomicBackupAndRestore.on_epoch_end

    def crash_after_epoch_3(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpointing.AtomicBackupAndRestore, "on_epoch_end", crash_after_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        ptft_in_process(*finetune, "--out", "killed", cwd=tmp_path, monkeypatch=monkeypatch,
                        capsys=capsys)  # fmt: skip
    monkeypatch.setattr(checkpointing.AtomicBackupAndRestore, "on_epoch_end", save)
    cli(*finetune, "--out", "killed", "--resume")

    def losses(run):
        records = map(json.loads, open(tmp_path / run / "metrics.jsonl"))
        return {r["epoch"]: r["loss"] for r in records if "loss" in r}

    whole, resumed = losses("whole"), losses("killed")
    assert set(resumed) >= {4, 5, 6}
    for epoch in (4, 5, 6):
        assert resumed[epoch] == pytest.approx(whole[epoch], rel=1e-5), (epoch, whole, resumed)
