"""The `ptft` parser: usage errors read like every other `ptft` error.

`PtftParser` prints a parsing error as `ptft: error: argument --epochs: must be an integer
>= 1, got '0'` (exit status 2), the prefix of the errors found later
(`ptft_keras.cli.runs.CliError`), so a user, or a script, reads one kind of error. The
flag types that refuse bad numbers are the recipes' (`ptft_keras.training.recipes.arguments`).
"""

import argparse
import sys


class PtftParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors start with `ptft: error:` (subcommands
    included: `add_subparsers` makes its parsers of this class)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"ptft: error: {message} (see `{self.prog} --help`)\n")
