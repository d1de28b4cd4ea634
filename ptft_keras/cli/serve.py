"""`ptft evaluate`, `ptft export`, `ptft predict`: use a fine-tuned run."""

import json
import os

import keras
import numpy as np

from ptft_keras.cli import data as cli_data
from ptft_keras.cli.runs import CliError, append_metrics, read_config
from ptft_keras.data import images as image_data
from ptft_keras.data.tokenizer import load_tokenizer
from ptft_keras.specs import LabelMap
from ptft_keras.training import plots
from ptft_keras.training.recipes import text as text_recipe


def add_parsers(subparsers, common_io):
    evaluate = subparsers.add_parser(
        "evaluate",
        parents=[common_io],
        help="accuracy, per-class table and confusion matrix on labeled data",
        description="Evaluate a `ptft finetune` run on labeled data; prints a per-class "
        "table and, last, `accuracy 0.xxxx`; writes confusion_matrix.png and metrics.json.",
    )
    evaluate.add_argument("run", help="a `ptft finetune` run directory")
    evaluate.add_argument("--data", required=True, help="labeled folder or table")
    evaluate.add_argument("--out", default=None, help="default: RUN/evaluation")
    evaluate.add_argument("--label-column", default=None, help="default: the fine-tune's")
    evaluate.set_defaults(run_command=run_evaluate)

    export = subparsers.add_parser(
        "export",
        help="a SavedModel (raw inputs), a LiteRT .tflite or an ONNX file",
        description="Export a `ptft finetune` run. savedmodel (default): a TensorFlow "
        "SavedModel whose serving_default signature takes uint8 images (N, H, W, C) or a "
        "string batch (N,) and returns probabilities and label names. tflite / onnx: "
        "model.tflite or model.onnx on uint8 images (image runs) or token ids + padding mask "
        "(text runs, with the tokenizer as vocabulary + rules + a plain-Python encode.py), "
        "labels.txt, checked in the format's own runtime (docs/export.md).",
    )
    export.add_argument("run", help="a `ptft finetune` run directory")
    export.add_argument("--out", required=True, help="the export directory")
    export.add_argument("--format", default="savedmodel", choices=("savedmodel", "tflite", "onnx"))
    export.add_argument(
        "--quantize",
        default="float32",
        choices=("float32", "float16", "int8"),
        help="tflite only: float16 weights or int8 dynamic-range quantisation",
    )
    export.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="tflite / onnx: max probability difference from the Keras model at the export "
        "check (default: float32 1e-4, float16 1e-2, int8 0.1)",
    )
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(run_command=run_export)

    predict = subparsers.add_parser(
        "predict",
        parents=[common_io],
        help="labels for image files or text lines",
        description="Print `label<TAB>probability<TAB>input` for each input: image files "
        "for an image run, text lines for a text run (`-` reads lines from stdin).",
    )
    predict.add_argument("run", help="a `ptft finetune` run directory")
    predict.add_argument("inputs", nargs="+", help="image files, or texts ('-': stdin lines)")
    predict.set_defaults(run_command=run_predict)


def load_run(run):
    """`(config, model, tokenizer or None)` of a finished fine-tune run."""
    config = read_config(run, kind="finetune")
    if config.get("backbone") is not None:  # keras-hub: its preprocessor takes raw strings
        from ptft_keras.cli.hub import load_hub_run

        return config, load_hub_run(run, config), None
    model = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    tokenizer = None
    if config["modality"] == "text":
        tokenizer = load_tokenizer(os.path.join(run, "tokenizer"))
    return config, model, tokenizer


def predict_probabilities(model, inputs, tokenizer=None, batch_size=256):
    """Softmax probabilities for image arrays or text strings."""
    if tokenizer is not None:
        ids = text_recipe.encode_texts(tokenizer, inputs, model.sequence_length)
        inputs = text_recipe.model_inputs(ids)
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


def run_evaluate(args):
    config, model, tokenizer = load_run(args.run)
    label_map = LabelMap(model.label_names)
    cli_data.check_modality(args.data, config["modality"])
    if config["modality"] == "image":
        x, y, folder_labels = cli_data.labeled_images(
            args.data, model.image_spec, args.skip_corrupt, resize=args.resize
        )
        y = label_map.encode(folder_labels.decode(y), where=args.data)  # by name
    else:
        label_column = args.label_column or config.get("label_column")
        text_column = args.text_column or config.get("text_column")
        x, y, _, _ = cli_data.labeled_texts(args.data, text_column, label_column, label_map)
    predictions = predict_probabilities(model, x, tokenizer).argmax(axis=1)
    report = cli_data.accuracy_report(y, predictions, label_map)
    out = args.out or os.path.join(args.run, "evaluation")
    os.makedirs(out, exist_ok=True)
    matrix = plots.confusion_matrix(y, predictions, len(label_map))
    png = plots.confusion_matrix_plot(
        matrix, label_map.names, os.path.join(out, "confusion_matrix.png")
    )
    report.update(data=os.path.abspath(args.data), examples=len(y), confusion=matrix.tolist())
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(report, f, indent=2)
    append_metrics(
        args.run, {"phase": "evaluate", "data": report["data"], "accuracy": report["accuracy"]}
    )
    width = max(len(n) for n in label_map.names + ["class"])
    print(f"{'class':<{width}}  precision  recall  support")
    for name, row in report["per_class"].items():
        print(
            f"{name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['support']:7d}"
        )
    print(f"wrote {png} and {os.path.join(out, 'metrics.json')}")
    print(f"accuracy {report['accuracy']:.4f}", flush=True)
    return 0


def run_export(args):
    config = read_config(args.run, kind="finetune")
    if args.quantize != "float32" and args.format != "tflite":
        raise CliError(f"--quantize {args.quantize} applies to --format tflite only")
    if args.tolerance is not None and args.format == "savedmodel":
        raise CliError("--tolerance applies to --format tflite and onnx only")
    if args.format != "savedmodel" and config.get("backbone") is not None:
        raise CliError(
            f"--format {args.format} is not supported for keras-hub runs ({config['backbone']}): "
            "their tokenizer and preprocessor stay TensorFlow graphs; use --format savedmodel"
        )
    config, model, tokenizer = load_run(args.run)
    if args.format != "savedmodel":
        return run_portable_export(args, config, model, tokenizer)
    if config.get("backbone") is not None:
        from ptft_keras.cli.hub import export_hub_run

        path = export_hub_run(model, config, args.out, overwrite=args.overwrite)
    elif config["modality"] == "image":
        from ptft_keras.export.image import export_image_classifier

        path = export_image_classifier(model, args.out, overwrite=args.overwrite)
    else:
        from ptft_keras.export.text import export_text_classifier

        path = export_text_classifier(model, tokenizer, args.out, overwrite=args.overwrite)
    print(f"exported {args.run} ({config['modality']}, labels {model.label_names}) to {path}")
    return 0


def run_portable_export(args, config, model, tokenizer):
    """`--format tflite|onnx`: `ptft_keras.export.portable`, verified in its runtime."""
    from ptft_keras.export.portable import export_portable

    try:
        report = export_portable(
            model,
            args.out,
            args.format,
            tokenizer,
            args.quantize,
            overwrite=args.overwrite,
            tolerance=args.tolerance,
        )
    except ImportError as error:  # the optional runtime / converter is not installed
        raise CliError(str(error)) from error
    print(
        f"exported {args.run} ({config['modality']}, labels {model.label_names}) to "
        f"{report['path']}/{report['file']} ({report['file_bytes']} bytes, {args.quantize}); "
        f"max |probability difference| vs Keras {report['max_abs_difference']:.3g} in "
        f"{report['runtime']} on {report['checked_examples']} examples "
        f"(tolerance {report['tolerance']:g})"
    )
    return 0


def run_predict(args):
    config, model, tokenizer = load_run(args.run)
    if config["modality"] == "image":
        for path in args.inputs:
            cli_data.check_exists(path, "input")
        folder = image_data.image_files(args.inputs)
        x = image_data.load_images(folder, model.image_spec, "resize" if args.resize else "error")[
            0
        ]
    else:
        texts = args.inputs
        if texts == ["-"]:
            import sys

            texts = [line.rstrip("\n") for line in sys.stdin]
        x = np.array(texts, dtype=object)
    probabilities = predict_probabilities(model, x, tokenizer)
    for source, row in zip(
        args.inputs if config["modality"] == "image" else x, probabilities, strict=True
    ):
        best = int(row.argmax())
        print(f"{model.label_names[best]}\t{row[best]:.4f}\t{source}")
    return 0
