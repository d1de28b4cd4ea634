"""`TextEnsemble`: text classifiers whose class probabilities are averaged.

ULMFiT (Howard & Ruder 2018) fine-tunes a classifier on a forward and one on a backward
LM and averages their predictions: a causal LM reads a text one way only, and the two
directions make different errors. Here the backward member is a
`TextClassifier(reverse_tokens=True)`, so both members take the same inputs:

    logits = log(mean_i softmax(member_i(x)))      # (batch, num_classes), float32

`softmax(logits)` is the mean probability and `argmax` the ensemble's class, so the
ensemble drops in wherever a `TextClassifier` goes: `evaluate`, `export_text_classifier`
(raw strings), `.keras` files.

    ensemble = TextEnsemble([forward_classifier, backward_classifier])
"""

import math

import keras
from keras import ops

from ptft_keras.models.heads import classification_loss
from ptft_keras.models.task import restore_compile
from ptft_keras.models.text_classifier import TextClassifier


@keras.saving.register_keras_serializable(package="ptft_keras")
class TextEnsemble(keras.Model):
    """Averages the probabilities of two or more fine-tuned `TextClassifier`s.

    Args:
        members: `TextClassifier`s with the same classes (`label_names`),
            `sequence_length` and vocabulary (one tokenizer serves them all); they are
            trained separately, before the ensemble is made.

    Inputs `{"token_ids", "padding_mask"}`; outputs float32 logits `(batch, num_classes)`
    (the log of the mean probability).
    """

    def __init__(self, members, **kwargs):
        members = list(members)
        if len(members) < 2:
            raise ValueError(
                f"`members` must hold at least 2 classifiers, received {len(members)}."
            )
        for member in members:
            if not isinstance(member, TextClassifier):
                raise ValueError(
                    f"Every member must be a TextClassifier, received {type(member).__name__}."
                )
        first = members[0]
        facts = lambda m: {  # what the members must share: classes, packing, tokenizer
            "label_names": m.label_names,
            "sequence_length": m.sequence_length,
            "vocabulary_size": m.backbone.vocabulary_size,
        }
        for member in members[1:]:
            for key, value in facts(member).items():
                if value != facts(first)[key]:
                    raise ValueError(
                        f"Members disagree on {key}: {facts(first)[key]!r} ({first.name}) vs "
                        f"{value!r} ({member.name})."
                    )

        # === Layers ===
        self.members = members

        # === Functional model ===
        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
        }
        log_probs = [ops.log_softmax(ops.cast(m(inputs), "float32"), axis=-1) for m in members]
        mean_log = ops.logsumexp(ops.stack(log_probs), axis=0) - math.log(len(members))
        super().__init__(inputs=inputs, outputs=mean_log, **kwargs)  # (batch, num_classes)

        # === Config ===
        self.num_classes = first.num_classes
        self.label_names = first.label_names
        self.sequence_length = first.sequence_length
        self.vocabulary_size = first.backbone.vocabulary_size

    def compile(self, optimizer="adamw", loss=None, metrics=("accuracy",), **kwargs):
        """Like `Model.compile`, defaulting to cross-entropy on the logits and accuracy."""
        loss = loss or classification_loss("crossentropy")
        super().compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []), **kwargs)

    def compile_from_config(self, config):
        restore_compile(self, config)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m) for m in config["members"]]
        return cls(**config)
