"""ONNX files: written with Keras's own exporter (tf2onnx), run in onnxruntime.

`write_onnx(model, file)` calls `model.export(file, format="onnx")`: on the TensorFlow
backend Keras traces the model's `call` and converts it with `tf2onnx` (on JAX through
jax2tf). `run_onnx(file, inputs)` runs it in `onnxruntime` on the CPU. Both need the
`onnx` extra: `pip install ptft_keras[onnx]` (tf2onnx, onnx, onnxruntime).
"""

import numpy as np

INSTALL = 'pip install "ptft_keras[onnx]"  (tf2onnx, onnx, onnxruntime)'


def _require(module):
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(f"ONNX export needs {module!r}: {INSTALL}.") from error


def write_onnx(model, file):
    """Convert a called Keras `model` to the ONNX `file` (`.onnx`)."""
    _require("tf2onnx")
    model.export(file, format="onnx", verbose=False)
    return file


def run_onnx(file, inputs):
    """The first output of `file` in onnxruntime for `inputs` (an array, or a dict by
    input name)."""
    ort = _require("onnxruntime")
    session = ort.InferenceSession(file, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    return session.run(None, {name: np.asarray(inputs[name]) for name in names})[0]
