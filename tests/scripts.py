"""Run what users run: the example scripts, and exported SavedModels in a fresh process.

    example = load_example("text_sentiment")       # examples/text_sentiment.py as a module
    answers = serve_in_fresh_process(path, texts)  # tf.saved_model.load elsewhere

`serve_in_fresh_process` loads an image or text SavedModel in a new Python started outside
the project root with an empty PYTHONPATH (so neither `ptft_keras` nor `keras_hub` can be
imported by accident), calls its entry points (`serving_default`, `serve`, `label_names`)
and returns what they gave and which of those two packages the process imported.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def load_example(name):
    """`examples/<name>.py` as a module (loaded once per test process)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


_SERVE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops, before loading
    path, inputs = sys.argv[1:]
    served = tf.saved_model.load(path)
    signature = served.signatures["serving_default"]
    if inputs.endswith(".npy"):  # uint8 images (N, H, W, C)
        x = np.load(inputs)
        out, answers = signature(images=tf.constant(x)), {"serve": served.serve(x)}
        answers["serve_float"] = served.serve((x / 255.0).astype("float32"))
        if x.shape[-1] == 1:
            answers["serve_no_channel"] = served.serve(x[..., 0])
    else:  # strings (N,), also sent as a column (N, 1)
        x = tf.constant(json.load(open(inputs)))
        out, answers = signature(text=x), {"serve": served.serve(x)}
        answers["column_probabilities"] = signature(text=x[:, None])["probabilities"]
    answers["probabilities"] = out["probabilities"]
    result = {key: value.numpy().tolist() for key, value in answers.items()}
    result["labels"] = [v.decode() for v in out["label"].numpy()]
    result["label_names"] = [v.decode() for v in served.label_names()["label_names"].numpy()]
    top = {name.split(".")[0] for name in sys.modules}
    result["imported"] = sorted(top & {"ptft_keras", "keras_hub"})
    print(json.dumps(result))
""")


def serve_in_fresh_process(path, inputs, timeout=600):
    """An export's answers to `inputs` (uint8 images `(N, H, W, C)`, or a list of strings)
    from a fresh process (module docstring): a dict of lists with `probabilities`,
    `labels`, `label_names`, `serve` (and `serve_float`, `serve_no_channel` for grey
    images; `column_probabilities` for text), and `imported`."""
    path = os.path.abspath(path)
    with tempfile.TemporaryDirectory() as workdir:  # not the project root
        if isinstance(inputs, np.ndarray):
            inputs_file = os.path.join(workdir, "inputs.npy")
            np.save(inputs_file, inputs)
        else:
            inputs_file = os.path.join(workdir, "inputs.json")
            with open(inputs_file, "w", encoding="utf-8") as f:
                json.dump(list(inputs), f)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH="")
        result = subprocess.run(
            [sys.executable, "-c", _SERVE, path, inputs_file],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=workdir,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
