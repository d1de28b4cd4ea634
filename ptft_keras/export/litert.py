"""LiteRT (TFLite) files: written with Keras's own exporter, run in the LiteRT interpreter.

`write_tflite(model, file, quantize)` calls `model.export(file, format="litert")` (Keras:
ExportArchive -> SavedModel -> `tf.lite.TFLiteConverter`) with TFLite built-in ops only, so
the file runs in the plain LiteRT interpreter (pip `ai-edge-litert`, Android, iOS), which
has neither the Select-TF ops nor tf-text's. Quantisation is the converter's post-training
kind, no calibration data:

| quantize | converter setting | weights |
|---|---|---|
| `float32` | none | float32 |
| `float16` | `Optimize.DEFAULT`, `supported_types=[float16]` | float16 (float32 math on CPU) |
| `int8` | `Optimize.DEFAULT` (dynamic range) | int8 if 1,024+ values; activations float |

`run_tflite(file, inputs)` runs the file's `serving_default` signature in
`ai_edge_litert.interpreter.Interpreter` when installed (`pip install ptft_keras[litert]`),
else in `tf.lite.Interpreter` (deprecated by TensorFlow, still in 2.21).
"""

import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("float32", "float16", "int8")


def converter_settings(quantize):
    """Keras `export(format="litert")` keyword arguments for `quantize`."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}; got {quantize!r}.")
    target_spec = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}  # no Select-TF ops
    settings = {}
    if quantize != "float32":
        settings["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        target_spec["supported_types"] = [tf.float16]
    return {**settings, "target_spec": target_spec}


def write_tflite(model, file, quantize="float32"):
    """Convert a called Keras `model` to the LiteRT flatbuffer `file` (`.tflite`)."""
    model.export(file, format="litert", verbose=False, **converter_settings(quantize))
    return file


def interpreter(file):
    """A LiteRT interpreter for `file`: `ai_edge_litert`'s if installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=file)


def run_tflite(file, inputs):
    """Outputs of `file`'s `serving_default` for `inputs` (an array, or a dict by input name)."""
    runner = interpreter(file).get_signature_runner()
    names = list(runner.get_input_details())
    if not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    (output,) = runner(**{name: np.asarray(inputs[name]) for name in names}).values()
    return output
