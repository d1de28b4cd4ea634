"""Run directories: what every `ptft` step writes and the next step reads.

    RUN/
      config.json       every argument (defaults included), the kind of run, its modality,
                        package versions, the data's fingerprint, the start and end times
      autoencoder.keras | lm.keras | model.keras    the model of the step
      lm_backward.keras a backward LM beside lm.keras (the text example's --bidirectional)
      preset/ | backbone.lora.h5 + head.weights.h5 + lora.json   keras-hub backbones
                        (`--backbone`, ptft_keras.cli.hub): pretrain | finetune --method lora
      tokenizer/        text runs: vocabulary.txt + tokenizer.json
      metrics.jsonl     one JSON line per epoch and phase (and the final evaluation)
      training_log.csv, tensorboard/<phase>/        Keras' CSV and TensorBoard logs
      checkpoints/<phase>/ckpt-<epoch>/             crash-safe per-epoch checkpoints
                                                    (removed when the phase completes)

A pretrained text LM has this one layout, whoever writes it (`ptft pretrain text`, the
text example's `--save-lm`): config.json (kind "pretrain", modality "text"), lm.keras and
tokenizer/ (`save_text_lm` / `load_text_lm`); `ptft finetune RUN` and the example's
`--load-lm` read it.

An existing RUN is refused unless `--overwrite` (it is deleted first, if it is a run
directory or empty) or `--resume` (the same command and arguments, paths compared as
absolute paths; training continues from the last completed epoch of the phase it was in).
RUN may never be, hold or sit inside an input of the same command (`--data`,
`--unlabeled`, the pretrained run, a local `--backbone`): `--overwrite` cannot delete them.
"""

import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
import time

import keras

from ptft_keras.data.tokenizer import load_tokenizer, save_tokenizer
from ptft_keras.training.callbacks import training_callbacks
from ptft_keras.training.checkpointing import latest_valid_checkpoint

CONFIG = "config.json"
LM_FILE, BACKWARD_LM_FILE, TOKENIZER = "lm.keras", "lm_backward.keras", "tokenizer"
METRICS = "metrics.jsonl"
# Arguments that may differ between a run and its --resume.
RESUME_FREE = ("resume", "overwrite", "strategy", "verbose")
# Arguments that name input paths (recorded and compared as absolute paths).
INPUTS = ("data", "unlabeled", "pretrained_run", "backbone")


CREATED = []  # run directories this process created (removed again if a step fails early)


class CliError(Exception):
    """A mistake the user can fix; printed as `ptft: error: ...` without a traceback."""


def prepare_run(out, args, kind, modality):
    """Create (or reopen with --resume) the run directory `out`; write its config.json."""
    out = os.path.abspath(out)
    arguments = _absolute_paths({k: v for k, v in sorted(vars(args).items()) if not callable(v)})
    _check_out_is_not_an_input(out, {k: arguments.get(k) for k in INPUTS})
    config = {
        "kind": kind,
        "modality": modality,
        "args": arguments,
        "versions": versions(),
        "started": _now(),
    }
    if os.path.exists(out):
        if getattr(args, "resume", False):
            previous = read_config(out)
            before = _absolute_paths(previous["args"])  # also runs from older versions
            changed = {
                k: (before.get(k), v)
                for k, v in config["args"].items()
                if k not in RESUME_FREE and before.get(k) != v
            }
            if previous["kind"] != kind or changed:
                raise CliError(
                    f"--resume needs the same command and arguments as the run in {out}; "
                    f"these differ (before, now): {changed or previous['kind']}"
                )
            config["started"] = previous.get("started")
            config["resumed"] = previous.get("resumed", []) + [_now()]
        elif getattr(args, "overwrite", False):
            if os.path.isfile(out) or (os.listdir(out) and not os.path.isfile(_config_path(out))):
                raise CliError(
                    f"--overwrite refuses to delete {out}: it is not a ptft run directory "
                    f"(no {CONFIG}); remove it yourself or choose another --out."
                )
            shutil.rmtree(out)
        else:
            raise CliError(f"{out} exists; pass --overwrite to replace it or --resume to continue.")
    elif getattr(args, "resume", False):
        raise CliError(f"--resume: {out} does not exist; run without --resume first.")
    if not os.path.exists(out):
        CREATED.append(out)
    os.makedirs(out, exist_ok=True)
    write_config(out, config)
    return out, config


def _absolute_paths(arguments):
    """`arguments` with --out and the input paths that exist as absolute paths (a keras-hub
    preset name stays a name), so `runs/x` and `/home/me/runs/x` are the same argument."""
    arguments = dict(arguments)
    for name in (*INPUTS, "out"):
        value = arguments.get(name)
        if isinstance(value, str) and (name == "out" or os.path.exists(value)):
            arguments[name] = os.path.abspath(value)
    return arguments


def _check_out_is_not_an_input(out, inputs):
    """Refuse an --out that is, holds or sits inside one of the command's input paths."""
    real_out = os.path.realpath(out)
    for name, path in inputs.items():
        if not isinstance(path, str) or not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        if real == real_out or _inside(real, real_out) or _inside(real_out, real):
            flag = "PRETRAINED_RUN" if name == "pretrained_run" else f"--{name}"
            raise CliError(
                f"--out {out} overlaps {flag} {path}: a run directory must be separate from "
                f"the command's inputs (--overwrite would delete them); choose another --out."
            )


def _inside(path, folder):
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def discard_unstarted_runs():
    """Remove run directories this process created that hold no model and no checkpoint:
    a step that stopped on a user error before training leaves nothing behind."""
    for out in CREATED:
        checkpoints = os.path.join(out, "checkpoints")
        saved = (".keras", ".lora.h5", "preset")  # the model of a step (keras-hub: the last two)
        trained = any(name.endswith(saved) for name in os.listdir(out)) or any(
            files for _, _, files in os.walk(checkpoints) if "state.json" in files
        )
        if not trained:
            shutil.rmtree(out, ignore_errors=True)


def read_config(run, kind=None):
    """The config.json of `run`; with `kind`, check the run is one (clear error if not)."""
    path = _config_path(run)
    if not os.path.isfile(path):
        raise CliError(f"{run} is not a ptft run directory (no {CONFIG}).")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if kind is not None and config.get("kind") not in ((kind,) if isinstance(kind, str) else kind):
        raise CliError(f"{run} is a {config.get('kind')} run; expected a {kind} run here.")
    if kind is not None and "finished" not in config:
        raise CliError(f"{run} did not finish (no model saved); rerun it with --resume.")
    return config


def write_config(run, config):
    with open(_config_path(run), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True, default=str)


def finish(run, config, **summary):
    """Record the end time and a summary of the step in config.json."""
    config.update(summary, finished=_now())
    write_config(run, config)


def save_text_lm(run, lm, tokenizer, lm_backward=None):
    """Write a pretrained LM into the run directory `run`: lm.keras, tokenizer/ and, for a
    forward + backward pair, lm_backward.keras."""
    save_tokenizer(tokenizer, os.path.join(run, TOKENIZER))
    lm.save(os.path.join(run, LM_FILE))
    if lm_backward is not None:
        lm_backward.save(os.path.join(run, BACKWARD_LM_FILE))


def load_text_lm(run, backward=False):
    """`(tokenizer, lm, lm_backward or None)` of a finished text pretrain run; with
    `backward=True` the backward LM must be there too."""
    config = read_config(run, kind="pretrain")
    if config.get("modality") != "text" or config.get("backbone") is not None:
        raise CliError(f"{run} is not a pretrain run of the toolkit's own text LM.")
    tokenizer = load_tokenizer(os.path.join(run, TOKENIZER))
    lm = keras.saving.load_model(os.path.join(run, LM_FILE), compile=False)
    path = os.path.join(run, BACKWARD_LM_FILE)
    if backward and not os.path.isfile(path):
        raise FileNotFoundError(f"no backward LM at {path!r} (pretrain with --bidirectional)")
    lm_backward = keras.saving.load_model(path, compile=False) if backward else None
    return tokenizer, lm, lm_backward


def completed_epochs(run, phase):
    """Epochs of `phase` already checkpointed in `run` (0 when starting afresh)."""
    found = latest_valid_checkpoint(os.path.join(run, "checkpoints", phase))
    return 0 if found is None else int(found[1]["epoch"])


class MetricsLog(keras.callbacks.Callback):
    """Append `{"phase", "epoch", <metrics>, "seconds"}` to RUN/metrics.jsonl per epoch."""

    def __init__(self, run, phase):
        super().__init__()
        self.path = os.path.join(run, METRICS)
        self.phase = phase

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"phase": self.phase, "epoch": epoch + 1}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        record["seconds"] = round(time.perf_counter() - self.start, 3)
        append_metrics(os.path.dirname(self.path), record)


def append_metrics(run, record):
    with open(os.path.join(run, METRICS), "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def phase_callbacks(run, phase):
    """Checkpoints (resumable), CSV + TensorBoard logs, metrics.jsonl, one line an epoch."""
    callbacks = training_callbacks(os.path.join(run, "checkpoints", phase), verbose=True)
    callbacks.append(MetricsLog(run, phase))
    if keras.backend.backend() == "tensorflow":  # Keras' TensorBoard writer needs TF
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run, "tensorboard", phase)))
    return callbacks


def fingerprint(path):
    """SHA-256 over what a data path holds: a file's bytes, or a folder's file names and
    sizes (fast for large image folders; a changed file of the same size goes unnoticed)."""
    digest = hashlib.sha256()
    path = os.path.abspath(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return {"path": path, "files": 1, "sha256": digest.hexdigest()}
    count = 0
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            digest.update(f"{os.path.relpath(full, path)}\0{os.path.getsize(full)}\n".encode())
            count += 1
    return {"path": path, "files": count, "sha256": digest.hexdigest()}


def versions():
    found = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in ("ptft_keras", "keras", "tensorflow", "keras_hub", "numpy", "jax"):
        module = sys.modules.get(name)
        if module is None:
            continue
        found[name] = getattr(module, "__version__", "unknown")
    return found


def _config_path(run):
    return os.path.join(run, CONFIG)


def _now():
    return datetime.datetime.now().isoformat(timespec="seconds")
