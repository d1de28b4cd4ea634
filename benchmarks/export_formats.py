"""SavedModel vs LiteRT (float32 / float16 / int8) vs ONNX for a fine-tuned `ptft` run.

For one `ptft finetune` run and its labeled test data: each format is exported
(`ptft_keras.export`), the whole test set is scored in the format's own runtime
(`tf.saved_model.load`, the LiteRT interpreter, onnxruntime), and the table gives the
file size, test accuracy, max |probability difference| vs the SavedModel, and latency per
example at batch 1 and 32 (median of `--calls` calls, one thread pool per runtime as it
comes, on whatever CPU this runs on: on a shared machine, upper bounds).

Inputs per format: the SavedModel takes raw inputs (uint8 images; strings, so its text
latency includes tokenisation); LiteRT / ONNX take uint8 images, or token ids made by the
export's plain-Python `tokenizer/encode.py` (its time is the `encode.py` row, per example).

    python -m benchmarks.export_formats RUN --data TEST [--out DIR] [--json FILE]
"""

import argparse
import os
import sys
import tempfile

import numpy as np

from benchmarks import common

LITERT = ("float32", "float16", "int8")
BATCHES = (1, 32)


def test_data(config, model, data):
    """(raw inputs, int labels): uint8 images or a list of strings."""
    from ptft_keras.cli import data as cli_data
    from ptft_keras.specs import LabelMap

    label_map = LabelMap(model.label_names)
    if config["modality"] == "image":
        if model.image_spec.scaling != "unit":
            raise ValueError("the benchmark rebuilds uint8 pixels from unit-scaled images")
        x, y, folders = cli_data.labeled_images(data, model.image_spec, resize=False)
        return np.round(x * 255).astype("uint8"), label_map.encode(folders.decode(y))
    texts, y, _, _ = cli_data.labeled_texts(data, config.get("text_column"), None, label_map)
    return list(texts), y


def savedmodel_peer(config, model, tokenizer, folder):
    """`predict(inputs) -> probabilities` of the SavedModel export, and its size."""
    import tensorflow as tf

    path = os.path.join(folder, "savedmodel")
    if tokenizer is None:
        from ptft_keras.export.image import export_image_classifier

        export_image_classifier(model, path)
    else:
        import tensorflow_text  # noqa: F401  (the WordPiece ops)

        from ptft_keras.export.text import export_text_classifier

        export_text_classifier(model, tokenizer, path)
    loaded = tf.saved_model.load(path)
    predict = lambda x: loaded.serve(tf.constant(x)).numpy()
    predict.keep = loaded  # the object owns the variables
    return predict, directory_bytes(path)


def portable_peer(model, tokenizer, folder, format, quantize):
    """`predict(model inputs)`, `encode(raw) -> model inputs` and the file size."""
    from ptft_keras.export import litert, onnx
    from ptft_keras.export.portable import export_portable
    from ptft_keras.export.portable_tokenizer import load_reference_encoder

    path = os.path.join(folder, f"{format}_{quantize}")
    report = export_portable(model, path, format, tokenizer, quantize)
    file = os.path.join(path, report["file"])
    if format == "tflite":
        runner = litert.interpreter(file).get_signature_runner()
        predict = lambda x: runner(**x)["output_0"]
    else:
        session = onnx._require("onnxruntime").InferenceSession(file)
        predict = lambda x: session.run(None, x)[0]
    encode = lambda raw: {"images": raw}
    if tokenizer is not None:
        encoder = load_reference_encoder(os.path.join(path, "tokenizer"))
        encode = lambda raw: encoder(raw)
    return predict, encode, report["file_bytes"]


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def take(inputs, rows):
    """Rows `rows` of an array, a dict of arrays or a list."""
    if isinstance(inputs, dict):
        return {k: v[rows] for k, v in inputs.items()}
    return inputs[rows] if isinstance(inputs, np.ndarray) else [inputs[i] for i in rows]


def in_batches(predict, inputs, n, size=256):
    return np.concatenate(
        [predict(take(inputs, np.arange(i, min(i + size, n)))) for i in range(0, n, size)]
    )


def latency(fn, inputs, n, calls):
    """{batch: median seconds per example} of `fn` on `batch` examples (repeated if the
    test set is smaller)."""
    out = {}
    for b in BATCHES:
        x = take(inputs, np.arange(b) % n)
        fn(x)  # warm-up
        out[b] = common.median([common.timed(lambda x=x: fn(x)) for _ in range(calls)]) / b
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a `ptft finetune` run directory")
    parser.add_argument("--data", required=True, help="its labeled test folder or table")
    parser.add_argument("--out", default=None, help="keep the exports here (default: temp)")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per batch size")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from ptft_keras.cli.serve import load_run

    config, model, tokenizer = load_run(args.run)
    raw, y = test_data(config, model, args.data)
    folder = args.out or tempfile.mkdtemp(prefix="export_formats_")
    predict, size = savedmodel_peer(config, model, tokenizer, folder)
    reference = in_batches(predict, raw, len(y))
    rows = [["savedmodel", "-", size, reference, latency(predict, raw, len(y), args.calls)]]
    peers = [("tflite", q) for q in LITERT] + [("onnx", "float32")]
    for format, quantize in peers:
        predict, encode, size = portable_peer(model, tokenizer, folder, format, quantize)
        inputs = encode(raw)
        probs = in_batches(predict, inputs, len(y))
        rows.append([format, quantize, size, probs, latency(predict, inputs, len(y), args.calls)])
    if tokenizer is not None:  # the plain-Python tokenizer, per example
        rows.append(["encode.py", "-", None, None, latency(encode, raw, len(y), args.calls)])
    keys = ["format", "quantize", "bytes", "accuracy", "max_abs_diff_vs_savedmodel"]
    keys += [f"ms_per_example_batch{b}" for b in BATCHES]
    table, records = [], []
    for format, quantize, size, probs, seconds in rows:
        record = {"format": format, "quantize": quantize, "bytes": size}
        if probs is not None:
            record["accuracy"] = float((probs.argmax(axis=1) == y).mean())
            record["max_abs_diff_vs_savedmodel"] = float(np.abs(probs - reference).max())
        record.update({f"ms_per_example_batch{b}": seconds[b] * 1e3 for b in BATCHES})
        records.append(record)
        table.append([record.get(k) for k in keys])
    columns = ["format", "quantize", "bytes", "accuracy", "max |dp|", "ms/ex b1", "ms/ex b32"]
    print(f"{args.run} on {args.data} ({len(y)} examples), exports in {folder}")
    print(common.format_table(columns, table))
    common.write_json(args.json, {"machine": common.machine_info(), "rows": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
