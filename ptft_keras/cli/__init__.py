"""The `ptft` command line: pretrain, fine-tune, evaluate, export and predict on your data.

    ptft pretrain image --data DIR --out RUN
    ptft pretrain text  --data FILE_OR_DIR --out RUN [--objective causal|masked]
    ptft finetune PRETRAINED_RUN --data LABELED --out RUN [--unlabeled PATH] [--method ...]
    ptft evaluate RUN --data LABELED          # prints "accuracy 0.xxxx" last
    ptft export RUN --out DIR                 # SavedModel, raw inputs
    ptft predict RUN INPUTS... | --file PATH  # image files, or texts -> label
    ptft demo-data mnist|sst2 --out DIR       # the offline demo data as folders / tables

keras-hub backbones (a preset name, or a local directory from keras-hub's save_to_preset):

    ptft pretrain text --data FILE_OR_DIR --backbone PRESET_OR_DIR --out RUN
                       [--objective masked|causal]
    ptft finetune [HUB_RUN | --backbone PRESET_OR_DIR] --data LABELED --out RUN
                  [--method auto|full|probe|lora|bitfit]  # then evaluate / export / predict RUN

Each step writes a run directory (`ptft_keras.cli.runs`) that the next one reads. Every
subcommand is a thin layer over the library (`ptft_keras.training.recipes`, `.data`,
`.export`); guide: docs/cli.md. A mistake the user can fix (a missing path, a table
without the named column, images of the wrong size for the model, ...) prints
`ptft: error: <what and how to fix it>` and exits with status 2; `PTFT_DEBUG=1` shows the
traceback instead.
"""

import os
import sys

USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
)


def build_parser():
    from ptft_keras.cli import demo_data, finetune, pretrain, serve
    from ptft_keras.cli.arguments import PtftParser
    from ptft_keras.training.strategies import STRATEGY_NAMES

    parser = PtftParser(
        prog="ptft",
        description="Pre-train on unlabeled data, fine-tune with few labels, evaluate, "
        "export and predict: images (folders) and text (corpora and tables).",
        epilog="Run `ptft COMMAND --help` for a command's options. Guide: docs/cli.md",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = PtftParser(add_help=False)  # shared by pretrain and finetune
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        default="auto",
        help="tf.distribute strategy (docs/distribution.md)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out run")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted --out run from its last epoch",
    )
    io = PtftParser(add_help=False)  # shared by evaluate and predict
    io.add_argument("--text-column", default=None, help="default: the fine-tune's")
    io.add_argument(
        "--resize",
        action="store_true",
        help="resize images of another size to the model's (else an error)",
    )
    io.add_argument("--skip-corrupt", action="store_true", help="leave unreadable files out")
    pretrain.add_parsers(commands, train)
    finetune.add_parser(commands, train)
    serve.add_parsers(commands, io)
    demo_data.add_parser(commands)
    return parser


def main(argv=None):
    """Entry point of the `ptft` script (pyproject `[project.scripts]`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ptft_keras.cli.runs import CREATED, CliError, discard_unstarted_runs

    CREATED.clear()  # only this call's run directories are discarded on a user error
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "run_command", None) or args.run
    try:
        return command(args)
    except BaseException as error:  # a failed step leaves no empty run directory behind
        discard_unstarted_runs()
        if not isinstance(error, (CliError, *USER_ERRORS)):
            raise
        if os.environ.get("PTFT_DEBUG"):
            raise
        print(f"ptft: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
