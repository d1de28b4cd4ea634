"""Plumbing shared by the task models (the models that own a loss).

- `restore_compile`: Keras's `.keras` loader calls `compile_from_config` on a model whose
  class overrides `compile`; the base implementation refuses to guess, so every task here
  that overrides `compile` only to fill in defaults delegates to it. The optimizer is
  built at once so that its saved variables load.
- `lm_compile_defaults`: the compile arguments shared by `CausalLM` and `MaskedLM`.
- `BackboneTask`: what the Transformer tasks (`CausalLM`, `MaskedLM`, `TextClassifier`)
  share: a `backbone` serialised in their config, and `restore_compile`.
"""

import keras


def restore_compile(model, config):
    """Compiles `model` from a saved compile config; builds the optimizer if it can."""
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.built:
        model.optimizer.build(model.trainable_variables)


def per_token_loss():
    """LM cross-entropy on logits, the mean over target tokens (the sum of the sample
    weights), not over every padded position or empty mask slot: the scale of a held-out
    loss per token, whatever the padding."""
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )


def lm_compile_defaults(optimizer="auto", loss="auto", weighted_metrics="auto"):
    """Compile arguments shared by `CausalLM` and `MaskedLM`; "auto" picks the default."""
    if optimizer == "auto":
        optimizer = keras.optimizers.AdamW(3e-4, weight_decay=0.01)
    if loss == "auto":
        loss = per_token_loss()
    if weighted_metrics == "auto":
        weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return {"optimizer": optimizer, "loss": loss, "weighted_metrics": weighted_metrics}


class BackboneTask:
    """Mixin (before `keras.Model`) for a functional task on a `TransformerBackbone`.

    `get_config` returns `self.task_config(**its own fields)`; `from_config` rebuilds the
    backbone, then calls the constructor with the rest.
    """

    def compile_from_config(self, config):
        restore_compile(self, config)  # the task's `compile` only adds defaults

    def task_config(self, **fields):
        backbone = keras.saving.serialize_keras_object(self.backbone)
        return {"name": self.name, "trainable": self.trainable, "backbone": backbone, **fields}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
