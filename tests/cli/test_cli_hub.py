"""`ptft ... --backbone PRESET_OR_DIR`: keras-hub backbones on the command line.

The tiny keras-hub presets of tests/hub/conftest.py (written by keras-hub's own
`save_to_preset`, no downloads) and real SST-2 sentences. The commands run in this process
through `ptft_keras.cli.main` (the parser, the dispatch and the error handling a user's
`ptft` goes through) rather than as subprocesses: each `ptft` process would import
TensorFlow and keras-hub again (~20 s a command on one busy core). The SavedModel is
served in a fresh process that imports neither ptft_keras nor keras-hub.
"""

import json
import os

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.cli import main  # noqa: E402
from ptft_keras.cli.data import predict_probabilities  # noqa: E402
from ptft_keras.cli.serve import load_run  # noqa: E402
from ptft_keras.variables import variable_map  # noqa: E402
from tests.hub.conftest import bert_preset, gpt2_preset, sst2_rows, sst2_texts  # noqa: E402, F401
from tests.scripts import serve_in_fresh_process  # noqa: E402

pytestmark = pytest.mark.tf_only


def ptft(capsys, *args):
    """`ptft ARGS` in this process: (exit status, stdout, last stderr line)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, (err.strip().splitlines() or [""])[-1]


def write_table(path, start, stop):
    texts, labels = sst2_rows(start, stop)
    rows = "".join(f"{label}\t{text}\n" for text, label in zip(texts, labels, strict=True))
    path.write_text("label\tsentence\n" + rows)
    return path, texts, labels


@pytest.fixture(scope="module")
def hub_runs(bert_preset, tmp_path_factory):  # noqa: F811
    """A `pretrain text --backbone` run and a `finetune --method lora` run on it."""
    root = tmp_path_factory.mktemp("cli_hub")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(sst2_rows(1000, 1400)[0]) + "\n")  # 400 unlabeled lines
    train, _, _ = write_table(root / "train.tsv", 0, 200)
    test, texts, labels = write_table(root / "test.tsv", 200, 264)
    pretrain = [
        "pretrain", "text", "--data", corpus, "--backbone", bert_preset, "--out",
        root / "pt", "--steps", 20, "--pretrain-batch", 16, "--pretrain-lr", 1e-2,
    ]  # fmt: skip
    assert main([str(a) for a in pretrain]) == 0
    finetune = [
        "finetune", root / "pt", "--data", train, "--method", "lora", "--lr", 1e-2,
        "--epochs", 3, "--out", root / "lora",
    ]  # fmt: skip
    assert main([str(a) for a in finetune]) == 0
    return {"root": root, "pt": root / "pt", "lora": root / "lora", "test": test,
            "texts": texts, "labels": labels}  # fmt: skip


def test_pretrain_text_backbone_lowers_held_out_loss_and_writes_a_preset(hub_runs, bert_preset):  # noqa: F811
    run = hub_runs["pt"]
    config = json.loads((run / "config.json").read_text())
    assert config["objective"] == "masked" and config["backbone"] == bert_preset  # default
    # 20 held-out SST-2 lines, the same masks before and after: 5.0 -> ~4.2 nats measured.
    assert config["held_out_loss"] < config["held_out_loss_before"] - 0.3, config
    adapted = keras_hub.models.Backbone.from_preset(str(run / "preset"))  # like any preset
    original = keras_hub.models.Backbone.from_preset(bert_preset)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(str(run / "preset"))
    assert tokenizer.vocabulary_size() == original.vocabulary_size
    moved = [
        np.abs(a.numpy() - b.numpy()).max() > 0
        for a, b in zip(adapted.weights, original.weights, strict=True)
    ]
    assert sum(moved) > len(moved) // 2  # the encoder moved (the unused pooler did not)


def test_lora_run_holds_keras_hub_files_that_plain_keras_hub_reads(hub_runs):
    run = hub_runs["lora"]
    names = set(os.listdir(run))
    assert {"backbone.lora.h5", "head.weights.h5", "lora.json"} <= names
    assert "model.keras" not in names  # the adapter and the head, not the whole model
    config = json.loads((run / "config.json").read_text())
    _, model, _ = load_run(str(run))  # what evaluate / export / predict use
    expected = predict_probabilities(model, hub_runs["texts"])
    assert (expected.max(axis=0) - expected.min(axis=0)).max() > 1e-4  # inputs differ

    # Plain keras-hub on the base preset (the pretrain run's), keras-hub's own API only.
    base = config["backbone"]
    manifest = json.loads((run / "lora.json").read_text())  # what plain keras-hub needs
    assert manifest["sequence_length"] == config["sequence_length"]
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        base, sequence_length=manifest["sequence_length"]
    )
    plain = keras_hub.models.BertTextClassifier.from_preset(
        base, num_classes=2, preprocessor=preprocessor
    )
    plain.backbone.enable_lora(manifest["rank"], target_layer_names=manifest["target_layer_names"])
    plain.backbone.load_lora_weights(str(run / "backbone.lora.h5"))
    plain.load_task_weights(str(run / "head.weights.h5"))
    logits = plain.predict(hub_runs["texts"], verbose=0)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_evaluate_equals_the_exported_saved_model_in_a_fresh_process(hub_runs, capsys):
    run, test = hub_runs["lora"], hub_runs["test"]
    status, out, _ = ptft(capsys, "evaluate", run, "--data", test)
    assert status == 0 and out.splitlines()[-1].startswith("accuracy ")
    accuracy = json.loads((run / "evaluation" / "metrics.json").read_text())["accuracy"]
    assert f"accuracy {accuracy:.4f}" == out.splitlines()[-1]
    saved = hub_runs["root"] / "saved_model"
    assert ptft(capsys, "export", run, "--out", saved)[0] == 0
    result = serve_in_fresh_process(saved, hub_runs["texts"])
    assert result["imported"] == []  # tensorflow + tensorflow_text alone serve it
    probabilities = np.array(result["probabilities"])
    _, model, _ = load_run(str(run))
    np.testing.assert_allclose(
        probabilities, predict_probabilities(model, hub_runs["texts"]), atol=1e-5
    )
    assert np.mean(probabilities.argmax(axis=1) == np.array(hub_runs["labels"])) == accuracy

    status, out, _ = ptft(capsys, "predict", run, "a gorgeous , witty film", "dull .")
    lines = [line.split("\t") for line in out.strip().splitlines()[-2:]]
    assert status == 0 and [line[2] for line in lines] == ["a gorgeous , witty film", "dull ."]
    assert all(name in ("0", "1") and 0.5 <= float(p) <= 1 for name, p, _ in lines)


def test_errors_name_the_bad_value(bert_preset, gpt2_preset, tmp_path, capsys):  # noqa: F811
    table, _, _ = write_table(tmp_path / "t.tsv", 0, 20)
    corpus = tmp_path / "c.txt"
    corpus.write_text("a line\nanother line\n")
    out = tmp_path / "run"

    def error(*args):
        status, _, message = ptft(capsys, *args, "--out", out)
        assert status == 2 and message.startswith("ptft: error: "), message
        assert not out.exists()  # nothing left behind
        return message

    message = error("finetune", "--backbone", bert_preset, "--data", table, "--unlabeled", corpus)
    assert "--unlabeled" in message and "not supported for keras-hub backbones" in message
    message = error(
        "pretrain", "text", "--data", corpus, "--backbone", gpt2_preset, "--objective", "masked"
    )
    assert "--objective masked" in message and "GPT2Backbone" in message
    assert gpt2_preset in message and "can do: causal" in message
    missing = str(tmp_path / "no_such_preset")
    message = error("pretrain", "text", "--data", corpus, "--backbone", missing)
    assert repr(missing) in message and "no such preset directory" in message
    message = error("finetune", "--backbone", tmp_path, "--data", table)  # not a preset
    assert repr(str(tmp_path)) in message and "no config.json" in message


# What each method may move in the backbone's pretrained variables (keys without LoRA).
MOVES = {
    "bitfit": lambda moved, keys: (
        moved and all(k.endswith(("bias", "gamma", "beta")) for k in moved)
    ),
    "adapters": lambda moved, keys: all(k.endswith(("gamma", "beta")) for k in moved),
}


# Through the CLI, the methods whose run directory differs: staged fits (lp-ft), only
# biases/norms moved (bitfit), adapter layers saved beside the backbone (adapters); lora's
# run is the module fixture's. probe / full / gradual / llrd share these code paths and are
# checked in-process, every one, by tests/hub/test_hub_parts_and_methods.py (each CLI case
# costs 10-40 s of the default suite).
CLI_METHODS = ("lp-ft", "bitfit", "adapters")


@pytest.mark.parametrize("method", CLI_METHODS)
def test_methods_finetune_a_preset_and_evaluate(method, bert_preset, tmp_path, capsys):  # noqa: F811
    train, _, _ = write_table(tmp_path / "train.tsv", 0, 32)
    test, _, _ = write_table(tmp_path / "test.tsv", 32, 48)
    run = tmp_path / method
    status, out, err = ptft(
        capsys, "finetune", "--backbone", bert_preset, "--data", train, "--method", method,
        "--epochs", 1, "--batch-size", 16, "--out", run,
    )  # fmt: skip
    assert status == 0, (out, err)
    assert json.loads((run / "config.json").read_text())["method"] == method
    status, out, _ = ptft(capsys, "evaluate", run, "--data", test)
    assert status == 0 and out.splitlines()[-1].startswith("accuracy ")
    model = load_run(str(run))[1]
    original = variable_map(keras_hub.models.Backbone.from_preset(bert_preset))
    tuned = variable_map(model.backbone)
    moved = [k for k, v in original.items() if np.abs(tuned[k].numpy() - v.numpy()).max() > 0]
    check = MOVES.get(method, lambda moved, keys: len(moved) > len(keys) // 2)  # the rest: all
    assert check(moved, list(original)), (method, moved)
    if method == "adapters":  # reloaded with what trained beside the backbone
        assert any("_adapter/" in k for k in tuned), method
