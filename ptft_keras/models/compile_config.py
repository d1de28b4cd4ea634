"""Restoring `compile` for models that override it only to fill in defaults.

Keras' `.keras` loader calls `compile_from_config` on a model whose class overrides
`compile`; the base implementation refuses to guess, so every such model here delegates
to `restore_compile`. The optimizer is built at once so that its saved variables load.
"""

import keras


def restore_compile(model, config):
    """Compiles `model` from a saved compile config; builds the optimizer if it can."""
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.built:
        model.optimizer.build(model.trainable_variables)
