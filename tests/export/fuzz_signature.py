"""Fuzz a SavedModel's `serving_default` signature, in a process without ptft_keras.

    python fuzz_signature.py SAVED_MODEL '{"kind": "image", "shape": [28, 28, 1]}' OUT.json N
    python fuzz_signature.py SAVED_MODEL '{"kind": "text"}' OUT.json N

N seeded random inputs: ranks 0-5, dims 0-64, dtypes uint8 / float32 / float64 / int32 /
string, batch 0-8, a third of them shaped as the model expects (so both outcomes are
exercised); for text also random bytes (invalid UTF-8), 100k-character strings, emoji
and nested shapes. Each call must either return exactly one row per input row with
probabilities summing to 1 and one label per row, or raise an error whose message names
the expected input. Anything else (a wrong row count, an unnamed error) is listed under
"bad" in the JSON report; the process itself must not crash.
"""

import json
import sys

import numpy as np
import tensorflow as tf

if "tensorflow_text" not in sys.modules:
    try:  # registers the WordPiece ops that text exports need
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass

DTYPES = ("uint8", "float32", "float64", "int32", "string")


def random_strings(rng, shape):
    """Strings of many kinds: words, emoji, invalid UTF-8, empty, very long."""
    size = int(np.prod(shape)) if shape else 1
    kinds = [
        lambda: "a great film , truly",
        lambda: "I don't like it 😡🎬",
        lambda: bytes(rng.integers(0, 256, rng.integers(0, 40)).astype("uint8")),  # not UTF-8
        lambda: "",
        lambda: "word " * 20_000,  # 100k characters
        lambda: "Ünïcödé ТЕКСТ 文字",
    ]
    values = [kinds[rng.integers(len(kinds))]() for _ in range(size)]
    values = [v if isinstance(v, bytes) else v.encode("utf-8") for v in values]
    return np.array(values, dtype=object).reshape(shape)


def random_input(rng, kind, shape):
    """One random input: (array, is_valid_shape_and_dtype)."""
    batch = int(rng.integers(0, 9))
    if rng.random() < 1 / 3:  # shaped as the model expects
        if kind == "image":
            h, w, c = shape
            dims = [batch, h, w] if (c == 1 and rng.random() < 0.5) else [batch, h, w, c]
            dtype = "uint8" if rng.random() < 0.7 else str(rng.choice(DTYPES))
        else:
            dims = [batch] if rng.random() < 0.7 else [batch, 1]
            dtype = "string" if rng.random() < 0.8 else str(rng.choice(DTYPES))
    else:
        rank = int(rng.integers(0, 6))
        dims = [batch] + [int(rng.integers(0, 65)) for _ in range(rank - 1)] if rank else []
        while np.prod(dims) > 200_000:  # keep memory bounded
            dims[-1] //= 2
        dtype = str(rng.choice(DTYPES))
    if dtype == "string":
        array = random_strings(rng, dims) if np.prod(dims) < 2000 else np.full(dims, b"x")
    else:
        array = rng.integers(0, 256, dims).astype(dtype)
    if kind == "image":
        valid = dtype == "uint8" and (
            (len(dims) == 4 and dims[1:] == list(shape))
            or (shape[-1] == 1 and len(dims) == 3 and dims[1:] == list(shape[:2]))
        )
    else:
        valid = dtype == "string" and (len(dims) == 1 or (len(dims) == 2 and dims[1] == 1))
    return array, valid


def named_expected(message, kind):
    """Our in-graph check's message, or TensorFlow's own for a wrong dtype at the
    signature ("input #0 was expected to be a uint8 tensor but is a float tensor")."""
    if kind == "image":
        return "expected images" in message or "expected to be a uint8 tensor" in message
    return "expected text" in message or "expected to be a string tensor" in message


def main(path, spec, report, n):
    spec, n = json.loads(spec), int(n)
    kind = spec["kind"]
    signature = tf.saved_model.load(path).signatures["serving_default"]
    argument = "images" if kind == "image" else "text"
    rng = np.random.default_rng(0)
    result = {"calls": 0, "answered": 0, "refused": 0, "bad": []}
    for i in range(n):
        array, valid = random_input(rng, kind, spec.get("shape"))
        description = f"call {i}: {array.dtype} {list(array.shape)} (valid: {valid})"
        result["calls"] += 1
        try:
            if array.dtype == object:  # strings (also empty and nested shapes)
                tensor = tf.constant(array.tolist(), dtype=tf.string, shape=array.shape)
            else:
                tensor = tf.constant(array)
            out = signature(**{argument: tensor})
        except Exception as error:  # every refusal must name the expected input
            result["refused"] += 1
            message = str(error)
            if valid or not named_expected(message, kind):
                result["bad"].append(f"{description}: {type(error).__name__}: {message[:300]}")
            continue
        result["answered"] += 1
        probs, labels = out["probabilities"].numpy(), out["label"].numpy()
        rows = array.shape[0] if array.ndim else None
        ok = (
            valid
            and probs.shape[0] == rows
            and labels.shape == (rows,)
            and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-4)
        )
        if not ok:
            result["bad"].append(f"{description}: answered with probabilities {probs.shape}")
    result["imported_ptft_keras"] = any(m.startswith("ptft_keras") for m in sys.modules)
    with open(report, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
