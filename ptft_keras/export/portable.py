"""LiteRT (`.tflite`) and ONNX exports of image and text classifiers, verified at export time.

    export_portable(classifier, "exports/mnist_tflite", "tflite", quantize="int8")
    export_portable(text_model, "exports/sst2_onnx", "onnx", tokenizer=tokenizer)

An export is a directory:

    model.tflite | model.onnx   images: uint8 `images` (N, H, W, C) at the trained size;
                                text: int32 `token_ids` and `padding_mask` (N, L);
                                -> float32 probabilities (N, K); N (the batch) is dynamic
    labels.txt                  the class names, one a line, in class-id order
    tokenizer/                  text only: `portable_tokenizer` (vocabulary, rules, encode.py)
    export.json                 format, quantisation, inputs, and the verification below

The pixel scaling of the image spec and the softmax are inside the model; a wrong rank,
size or dtype is refused by the runtime itself (fixed rank, unlike the SavedModel, which
takes any shape and checks it). The graph is the one Keras exports (`model.export(format=
"litert" | "onnx")`) of a small functional wrapper: uint8 pixels -> scaling -> the model ->
softmax (text: ids and mask -> the model -> softmax).

Verification: the file is run in its own runtime (the LiteRT interpreter, onnxruntime) on
a sample (seeded random images; for text, `SAMPLE_TEXTS` through the toolkit tokenizer)
and compared with the Keras wrapper; the max |probability difference| is recorded in
`export.json` and one above `tolerance` (default `TOLERANCE[quantize]`) is an error that
removes the export. For text, `tokenizer/encode.py` must also give the toolkit's ids on
`SAMPLE_TEXTS`.
"""

import json
import os
import shutil

import keras
import numpy as np

from ptft_keras.data.tokenizer import TextEncoder
from ptft_keras.export import litert
from ptft_keras.export import onnx as onnx_export
from ptft_keras.export.common import check_label_names, prepare_export_dir
from ptft_keras.export.image import model_image_spec
from ptft_keras.export.portable_tokenizer import write_portable_tokenizer
from ptft_keras.export.text import checked_sequence_length

FORMATS = ("tflite", "onnx")
# Max |probability difference| from the Keras model allowed at export time: float32 is
# the same arithmetic up to op order; float16 weights and int8 dynamic-range quantisation
# cost accuracy on purpose (docs/export.md has the measured figures).
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "int8": 0.1}
SAMPLE_TEXTS = (
    "Great movie!",
    "I don't like it. It's BAD... 10,000 people, 3.5 stars",
    "",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u65e5\u672c\u8a9e \U0001f600 \u039f\u0394\u039f\u03a3",
    "a dull , boring film that never works",
    "good " * 3000,
    "tabs\tand\nnew lines \u00a0 and (brackets) [square] ?!",
    "the story is fine but the acting is terrible",
)


class ExportCheckError(ValueError):
    """The exported file's outputs differ from the Keras model's by more than allowed."""


def image_probability_model(model, spec):
    """uint8 `(N, H, W, C)` pixels -> the spec's scaling -> `model` -> softmax."""
    images = keras.Input(spec.shape, dtype="uint8", name="images")
    x = keras.ops.cast(images, "float32") / 255.0  # (N, H, W, C) in [0, 1]
    if spec.scaling == "standard":
        x = (x - np.array(spec.mean, "float32")) / np.array(spec.std, "float32")
    probabilities = keras.ops.softmax(model(x, training=False), axis=-1)  # (N, K)
    return _called(keras.Model(images, probabilities, name="image_probabilities"))


def text_probability_model(model, sequence_length):
    """int32 `token_ids`, `padding_mask` `(N, L)` -> `model` -> softmax."""
    inputs = {
        name: keras.Input((sequence_length,), dtype="int32", name=name)
        for name in ("token_ids", "padding_mask")
    }
    probabilities = keras.ops.softmax(model(inputs, training=False), axis=-1)  # (N, K)
    return _called(keras.Model(inputs, probabilities, name="text_probabilities"))


def _called(wrapper):
    """Keras's ONNX exporter needs a model that has been called once."""
    wrapper(keras.tree.map_structure(lambda t: np.zeros((1, *t.shape[1:]), t.dtype), wrapper.input))
    return wrapper


def export_portable(
    model,
    path,
    format,
    tokenizer=None,
    quantize="float32",
    overwrite=False,
    image_spec=None,
    label_names=None,
    sequence_length=None,
    tolerance=None,
):
    """Write `model` as a verified LiteRT or ONNX export directory (module docstring).

    Args:
      model: an image classifier (scaled images -> logits) or, with `tokenizer`, a text
        classifier (`{"token_ids", "padding_mask"}` -> logits).
      path: the export directory; an existing one is refused unless `overwrite`.
      format: `"tflite"` or `"onnx"`.
      tokenizer: the text model's tokenizer (makes it a text export).
      quantize: `"float32"`, `"float16"` or `"int8"` (dynamic range); LiteRT only.
      image_spec, label_names, sequence_length: as for the SavedModel exporters.
      tolerance: max |probability difference| allowed; default `TOLERANCE[quantize]`.

    Returns the contents of `export.json` (a dict, with `path`).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}.")
    if quantize not in litert.QUANTIZATIONS or (format == "onnx" and quantize != "float32"):
        raise ValueError(
            f"quantize={quantize!r} is not offered for {format}: LiteRT takes "
            f"{litert.QUANTIZATIONS}, ONNX float32 only."
        )
    if tokenizer is None:
        spec = model_image_spec(model, image_spec)
        wrapper = image_probability_model(model, spec)
        rng = np.random.default_rng(0)
        sample = rng.integers(0, 256, (16, *spec.shape)).astype("uint8")
        inputs = {"images": f"uint8 (N, {', '.join(map(str, spec.shape))})"}
    else:
        length = checked_sequence_length(model, tokenizer, sequence_length)
        wrapper = text_probability_model(model, length)
        encoded = TextEncoder(tokenizer, length)(list(SAMPLE_TEXTS))
        sample = {k: np.asarray(v).astype("int32") for k, v in encoded.items()}
        inputs = {name: f"int32 (N, {length})" for name in ("token_ids", "padding_mask")}
    if len(wrapper.output.shape) != 2 or wrapper.output.shape[-1] < 2:
        raise ValueError(f"{model.name!r} must return (batch, num_classes) logits.")
    names = check_label_names(
        label_names or getattr(model, "label_names", None), int(wrapper.output.shape[-1])
    )
    path = prepare_export_dir(path, overwrite=overwrite)
    os.makedirs(path)
    try:
        report = _write_and_verify(wrapper, path, format, quantize, sample, tolerance)
        with open(os.path.join(path, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{name}\n" for name in names))
        if tokenizer is not None:
            tokenizer_dir = os.path.join(path, "tokenizer")
            write_portable_tokenizer(tokenizer, tokenizer_dir, length, check_texts=SAMPLE_TEXTS)
    except Exception:
        shutil.rmtree(path, ignore_errors=True)  # never leave an unverified export behind
        raise
    report.update(
        modality="image" if tokenizer is None else "text",
        inputs=inputs,
        output=f"float32 probabilities (N, {len(names)})",
        labels=names,
    )
    with open(os.path.join(path, "export.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return {**report, "path": path}


def _write_and_verify(wrapper, path, format, quantize, sample, tolerance):
    """Write the model file, run it in its runtime on `sample`, compare with `wrapper`."""
    file = os.path.join(path, f"model.{format}")
    if format == "tflite":
        litert.write_tflite(wrapper, file, quantize)
        got, runtime = litert.run_tflite(file, sample), "LiteRT interpreter"
    else:
        onnx_export.write_onnx(wrapper, file)
        got, runtime = onnx_export.run_onnx(file, sample), "onnxruntime"
    expected = keras.ops.convert_to_numpy(wrapper(sample))
    difference = float(np.max(np.abs(np.asarray(got) - expected)))
    tolerance = TOLERANCE[quantize] if tolerance is None else float(tolerance)
    if not difference <= tolerance:  # also catches NaN
        raise ExportCheckError(
            f"the {format} ({quantize}) export's probabilities differ from the Keras model's "
            f"by up to {difference:.3g} in {runtime} on {len(expected)} examples "
            f"(tolerance {tolerance:g}); nothing was written."
        )
    return {
        "format": format,
        "quantize": quantize,
        "file": os.path.basename(file),
        "file_bytes": os.path.getsize(file),
        "runtime": runtime,
        "checked_examples": len(expected),
        "max_abs_difference": difference,
        "tolerance": tolerance,
    }
