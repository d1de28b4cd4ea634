"""Recipe settings as command-line flags: one flag per dataclass field, same defaults.

    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser, ImageRecipe())          # --probe-steps, --batch-size, ...
    recipe = recipe_from_args(ImageRecipe, parser.parse_args())

Used by the examples and the `ptft` command line, so a recipe setting added to the
dataclass is a flag everywhere at once. Numbers are checked while parsing (`bounded`): a
negative value, a 0 where the field needs more (a rate, a batch size) or a share above 1
is an error that names the flag, before anything runs.
"""

import argparse
import dataclasses
import typing

# Numeric recipe fields that may be 0 (0 skips a stage or turns a term off); the others
# must be > 0. Every numeric field refuses a negative value, and FRACTIONS stay <= 1.
ZERO_ALLOWED = (
    *("_steps", "_rounds", "_weight", "_augmentation", "dropout", "mask_rate", "replace_rate"),
    "max_shift",
)
FRACTIONS = ("dropout", "mask_rate", "replace_rate", "_threshold", "_ema")


def _flag(name):
    return "--" + name.replace("_", "-")


def add_recipe_arguments(parser, recipe, only=None):
    """Add `--<field>` for every field of the dataclass instance `recipe` (or `only`)."""
    group = parser.add_argument_group(f"{type(recipe).__name__} settings")
    for field in dataclasses.fields(recipe):
        if only is not None and field.name not in only:
            continue
        default = getattr(recipe, field.name)
        kind = type(default) if default is not None else _optional_type(field)
        shown = "set from the data (the recipe's docs)" if default is None else default
        if kind is bool:
            group.add_argument(
                _flag(field.name), default=default, action=argparse.BooleanOptionalAction,
                help=f"(flag) default {shown}",
            )  # fmt: skip
        else:
            group.add_argument(
                _flag(field.name), type=_field_type(field.name, kind), default=default,
                help=f"default {shown}",
            )  # fmt: skip
    return parser


def _field_type(name, kind):
    """The argparse type of a recipe field: numbers within the field's range."""
    if kind not in (int, float):
        return kind
    zero = name.endswith(ZERO_ALLOWED)
    top = 1 if name.endswith(FRACTIONS) else None
    return bounded(kind, minimum=0, maximum=top, zero=zero)


def bounded(kind, minimum=None, maximum=None, zero=True):
    """An argparse `type`: a number of `kind` (int or float) in [minimum, maximum]; with
    `zero=False` the minimum itself (0) is refused too. The error names the range and the
    value (argparse adds the flag): `argument --epochs: must be an integer > 0, got '0'`."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_describe(kind)}, got {text!r}") from None
        low = minimum is not None and (value < minimum or (not zero and value == minimum))
        if low or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(
                f"must be {_describe(kind)} {_range(minimum, maximum, zero)}, got {text!r}"
            )
        return value

    parse.__name__ = kind.__name__
    return parse


def _describe(kind):
    return "an integer" if kind is int else "a number"


def _range(minimum, maximum, zero):
    low = f"{'>=' if zero else '>'} {minimum}"
    return low if maximum is None else f"{low} and <= {maximum}"


positive_int = bounded(int, minimum=0, zero=False)
positive_float = bounded(float, minimum=0, zero=False)


def _optional_type(field):
    """`float` for a field annotated `float | None` (int when the annotation says nothing)."""
    kinds = [k for k in typing.get_args(field.type) if k is not type(None)]
    return kinds[0] if len(kinds) == 1 else int


def recipe_from_args(cls, args, **overrides):
    """A `cls` recipe from parsed arguments (fields missing from `args` keep defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**values, **overrides})


def parse_label_budgets(text, num_classes=2):
    """ "1000,all" -> [1000, "all"]: label budgets, checked before any training starts
    (each a positive multiple of `num_classes`, to draw them class-balanced)."""
    budgets = []
    for item in str(text).split(","):
        item = item.strip()
        if item != "all" and not (
            item.isdigit() and 0 < int(item) and int(item) % num_classes == 0
        ):
            raise ValueError(
                f"label budget {item!r} in {text!r}: expected 'all' or a positive multiple of "
                f"{num_classes} (class-balanced over {num_classes} classes)"
            )
        budgets.append(item if item == "all" else int(item))
    return budgets
