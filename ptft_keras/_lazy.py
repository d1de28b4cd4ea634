"""Lazy public names for subpackages (PEP 562).

Why lazy: `transfer`, `peft` and `training` import each other's submodules (a cycle if
their `__init__` imported eagerly), and `data`, `export` and `training.strategies` import
TensorFlow, which must stay off the model path (the GPU machines run Keras on JAX with no
TensorFlow installed). A name is imported from its module the first time it is used.
"""

import importlib


def lazy_exports(package, exports):
    """Returns `(__getattr__, __dir__)` for `package` serving `exports` {name: module}."""

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
