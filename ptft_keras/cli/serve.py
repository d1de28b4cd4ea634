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
from ptft_keras.training.recipes.arguments import positive_float


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
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace the results of an earlier evaluate"
    )
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
        type=positive_float,
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
        "for an image run; for a text run each argument is a text, and --file PATH reads "
        "one text a line from a file (`--file -`: stdin). An argument that names an existing "
        "file is refused for a text run, so a path is never classified as a sentence.",
    )
    predict.add_argument("run", help="a `ptft finetune` run directory")
    predict.add_argument("inputs", nargs="*", help="image files, or texts")
    predict.add_argument(
        "--file",
        default=None,
        metavar="PATH",
        help="text runs: classify each line of PATH ('-': standard input)",
    )
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
    predictions = cli_data.predict_probabilities(model, x, tokenizer).argmax(axis=1)
    report = cli_data.accuracy_report(y, predictions, label_map)
    out = args.out or os.path.join(args.run, "evaluation")
    results = os.path.join(out, "metrics.json")
    if os.path.exists(results) and not args.overwrite:
        raise CliError(
            f"{results} exists (an earlier evaluate); pass --overwrite to replace it or "
            f"choose another --out."
        )
    os.makedirs(out, exist_ok=True)
    matrix = plots.confusion_matrix(y, predictions, len(label_map))
    png = plots.confusion_matrix_plot(
        matrix, label_map.names, os.path.join(out, "confusion_matrix.png")
    )
    report.update(data=os.path.abspath(args.data), examples=len(y), confusion=matrix.tolist())
    with open(results, "w") as f:
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
    print(f"wrote {png} and {results}")
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
    if os.path.exists(args.out) and not args.overwrite:  # before the model loads
        raise CliError(f"--out {args.out} exists; pass --overwrite to replace an earlier export.")
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


def _texts_to_predict(args):
    """The texts of `ptft predict TEXT_RUN`: the arguments as written, or --file's lines."""
    if args.file is not None and args.inputs:
        raise CliError("pass texts as arguments or --file PATH, not both.")
    if args.file is None:
        if not args.inputs:
            raise CliError("pass the texts to classify, or --file PATH (one text a line).")
        for text in args.inputs:
            if text == "-" or os.path.isfile(text):
                raise CliError(
                    f"{text!r} {'is a file' if text != '-' else 'means standard input'}; "
                    f"a text run classifies its arguments as texts: to classify the lines of "
                    f"a file use --file {text}."
                )
        return list(args.inputs)
    if args.file == "-":
        import sys

        return [line.rstrip("\n") for line in sys.stdin]
    cli_data.check_exists(args.file, "--file")
    with open(args.file, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f]


def run_predict(args):
    config = read_config(args.run, kind="finetune")
    if config["modality"] == "image":
        if args.file is not None or not args.inputs:
            raise CliError("an image run predicts image files: pass their paths (no --file).")
        for path in args.inputs:
            cli_data.check_exists(path, "input")
        sources = args.inputs
    else:
        sources = _texts_to_predict(args)
    config, model, tokenizer = load_run(args.run)
    if config["modality"] == "image":
        folder = image_data.image_files(args.inputs)
        resize = "resize" if args.resize else "error"
        x = image_data.load_images(folder, model.image_spec, resize)[0]
    else:
        x = np.array(sources, dtype=object)
    probabilities = cli_data.predict_probabilities(model, x, tokenizer)
    for source, row in zip(sources, probabilities, strict=True):
        best = int(row.argmax())
        print(f"{model.label_names[best]}\t{row[best]:.4f}\t{source}")
    return 0
