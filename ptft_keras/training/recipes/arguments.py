"""Recipe settings as command-line flags: one flag per dataclass field, same defaults.

    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser, ImageRecipe())          # --probe-steps, --batch-size, ...
    recipe = recipe_from_args(ImageRecipe, parser.parse_args())

Used by the examples and the `ptft` command line, so a recipe setting added to the
dataclass is a flag everywhere at once.
"""

import dataclasses
import typing


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
                _flag(field.name), default=default, action=argparse_boolean(),
                help=f"(flag) default {shown}",
            )  # fmt: skip
        else:
            group.add_argument(
                _flag(field.name), type=kind, default=default, help=f"default {shown}"
            )
    return parser


def _optional_type(field):
    """`float` for a field annotated `float | None` (int when the annotation says nothing)."""
    kinds = [k for k in typing.get_args(field.type) if k is not type(None)]
    return kinds[0] if len(kinds) == 1 else int


def argparse_boolean():
    import argparse

    return argparse.BooleanOptionalAction


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
