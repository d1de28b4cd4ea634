"""keras-hub text backbones as toolkit classifiers and continued-pretraining tasks.

    clf = hub_text_classifier("bert_tiny_en_uncased", num_classes=2,       # online: a preset
                              label_names=["negative", "positive"], sequence_length=128)
    clf = hub_text_classifier("/models/my_bert", num_classes=2)            # offline: a local
                                                                           # save_to_preset dir
    mlm = hub_masked_lm("/models/my_bert", sequence_length=64); mlm.fit(texts)
    clf = hub_text_classifier(mlm, num_classes=2, preset="/models/my_bert")  # same backbone
    clf.fit(texts, labels); clf.predict(["a great film"])                  # raw strings

`source` is a preset (a name such as `"bert_base_en_uncased"`, which `from_preset` downloads,
or a local directory written by keras-hub's `save_to_preset`), a keras-hub `Backbone`, or a
keras-hub task (`MaskedLM`, `CausalLM`) whose backbone the classifier then *shares* (the
same variables, no copy; `transfer_backbone` copies instead, strictly and with a report).

What is keras-hub's and what is hand-written here, and why:

* Backbones with a keras-hub classifier (BERT, RoBERTa, DistilBERT, ALBERT, DeBERTaV3, FNet,
  XLM-R) get keras-hub's own class and head (e.g. `BertTextClassifier`: dropout + Dense
  `"logits"` on `pooled_output`), wrapped in a `Labeled<Class>` subclass that adds only
  `label_names` to `__init__`/`get_config` (keras-hub's classifiers have nowhere to keep
  class names). The subclass adds no layer, so keras-hub's `save_task_weights` /
  `load_task_weights` files move between it and the plain keras-hub class. Its
  `backbone_cls` is `None` so keras-hub's `find_subclass` (used by
  `TextClassifier.from_preset`) never picks it instead of the built-in class.
* Backbones without one (GPT-2 and other decoder-only models) get `HubCausalClassifier`
  (hand-written: keras-hub has no text classifier for them): the hidden state of the last
  real token (the only position that has seen the whole text in a causal model), dropout,
  Dense `"logits"`; with `CausalClassifierPreprocessor` (the tokenizer and keras-hub's
  `StartEndPacker`, as keras-hub's legacy `GPT2Preprocessor` does, for any tokenizer).
* Preprocessors come from the preset (`<Class>.preprocessor_cls.from_preset(preset,
  sequence_length=...)`); from a task source, they are rebuilt around the task's tokenizer.
  keras-hub's default `sequence_length` is 512 whatever the backbone's
  `max_sequence_length`, so it is checked here against the backbone.

Continued pretraining uses keras-hub's own tasks: `hub_masked_lm` (`MaskedLM.from_preset`:
15% of tokens selected, 80% `[MASK]` / 10% random / 10% kept, keras-hub's defaults) and
`hub_causal_lm` (`CausalLM.from_preset`). keras-hub is imported here, not by
`ptft_keras.models`: importing it takes seconds and loads TensorFlow and tensorflow_text
even on the JAX backend (checked with keras-hub 0.32), which the model path must not need.
`import ptft_keras.models.hub` registers the classes for `keras.saving`.
"""

import os

import keras
import keras_hub
from keras import ops
from keras_hub.src.utils.preset_utils import list_subclasses

from ptft_keras.specs import LabelMap

_LABELED = {}  # keras-hub classifier class -> its Labeled subclass


def _labeled(base):
    """`base` (a keras-hub TextClassifier class) plus `label_names` in its config."""
    if base in _LABELED:
        return _LABELED[base]

    class Labeled(base):
        backbone_cls = None  # never chosen by keras-hub's `find_subclass`

        def __init__(self, *args, label_names=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.label_names = _label_names(label_names, self.num_classes)

        def get_config(self):
            return {**super().get_config(), "label_names": list(self.label_names)}

    Labeled.__name__ = Labeled.__qualname__ = f"Labeled{base.__name__}"
    Labeled.__doc__ = f"keras-hub's `{base.__name__}` with `label_names` in its config."
    Labeled.hub_class = base
    _LABELED[base] = keras.saving.register_keras_serializable("ptft_keras")(Labeled)
    return _LABELED[base]


def _label_names(names, num_classes):
    names = [str(i) for i in range(num_classes)] if names is None else list(names)
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} label_names for num_classes={num_classes}: {names}.")
    return LabelMap(names).names


# Registered now, for every keras-hub classifier, so that `keras.saving.load_model` finds
# `ptft_keras>Labeled<Class>` in a process that only imported this module.
for _base in list_subclasses(keras_hub.models.TextClassifier):
    if getattr(_base, "backbone_cls", None) is not None:
        _labeled(_base)


@keras.saving.register_keras_serializable("ptft_keras")
class CausalClassifierPreprocessor(keras_hub.models.Preprocessor):
    """Strings -> `{"token_ids", "padding_mask"}` for a decoder-only backbone.

    The tokenizer, then keras-hub's `StartEndPacker` (start and end token, padded with the
    tokenizer's pad token, or its end token when it has none, as GPT-2 does). Labels and
    sample weights pass through, so `fit(strings, labels)` works.
    """

    def __init__(self, tokenizer, sequence_length=128, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.packer = None

    def build(self, input_shape):
        # In `build`, not `__init__` (as keras-hub's GPT2Preprocessor does): a tokenizer
        # restored from a `.keras` file gets its vocabulary, hence its special token ids,
        # only after construction; built earlier, the packer silently drops the start token.
        tokenizer = self.tokenizer
        pad = getattr(tokenizer, "pad_token_id", None)
        self.packer = keras_hub.layers.StartEndPacker(
            start_value=tokenizer.start_token_id,
            end_value=tokenizer.end_token_id,
            pad_value=tokenizer.end_token_id if pad is None else pad,
            sequence_length=self.sequence_length,
            return_padding_mask=True,
        )
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        token_ids, padding_mask = self.packer(self.tokenizer(x))  # (batch, sequence_length)
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@keras.saving.register_keras_serializable("ptft_keras")
class HubCausalClassifier(keras_hub.models.TextClassifier):
    """Last-real-token classifier on a decoder-only keras-hub backbone (e.g. GPT-2).

    Args:
        backbone: a keras-hub backbone taking `{"token_ids", "padding_mask"}` and returning
            `(batch, seq, hidden)`.
        num_classes: number of classes.
        preprocessor: a `CausalClassifierPreprocessor` or `None` (token-id inputs).
        dropout: dropout before the logits layer.
        label_names: class names in id order (default "0", "1", ...).

    Layer names: the backbone's, `classifier_dropout`, `logits` (as in keras-hub's
    `BertTextClassifier`).
    """

    backbone_cls = None  # any decoder-only backbone; never picked by `find_subclass`

    def __init__(
        self, backbone, num_classes, preprocessor=None, dropout=0.1, label_names=None, **kwargs
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes, dtype=backbone.dtype_policy, name="logits"
        )

        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)  # (batch, seq, hidden)
        mask = ops.cast(inputs["padding_mask"], "int32")  # (batch, seq), 1 = real token
        last = ops.maximum(ops.sum(mask, axis=1) - 1, 0)  # (batch,): right padding
        pooled = ops.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]  # (batch, h)
        logits = self.output_dense(self.output_dropout(pooled))  # (batch, num_classes)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout
        self.label_names = _label_names(label_names, num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "label_names": list(self.label_names),
        }


def hub_backbone(source):
    """A keras-hub `Backbone` from a preset (name or local dir), a backbone, or a task."""
    if isinstance(source, (str, os.PathLike)):
        return keras_hub.models.Backbone.from_preset(os.fspath(source))
    if isinstance(source, keras_hub.models.Backbone):
        return source
    if isinstance(source, keras_hub.models.Task):
        return source.backbone
    raise TypeError(
        "source must be a keras-hub preset (name or directory), Backbone or Task; "
        f"got {type(source).__name__}."
    )


def hub_classifier_class(backbone):
    """keras-hub's text classifier class for `backbone`, or `None` if it has none."""
    found = [
        cls
        for cls in list_subclasses(keras_hub.models.TextClassifier)
        if getattr(cls, "backbone_cls", None) is type(backbone)
    ]
    found.sort(key=lambda cls: cls.__name__)  # set order is arbitrary; aliases are equal
    return found[0] if found else None


def hub_text_classifier(
    source,
    num_classes,
    *,
    label_names=None,
    sequence_length=None,
    preprocessor=None,
    preset=None,
    dropout=0.1,
):
    """A sequence classifier (keras-hub task) on a keras-hub text backbone.

    Args:
        source: a preset name or local preset directory, a keras-hub `Backbone`, or a
            keras-hub task (its backbone is shared, not copied).
        num_classes: number of classes (the head is new and randomly initialised).
        label_names: class names in id order; stored in the config.
        sequence_length: the length texts are packed to (default: the backbone's
            `max_sequence_length`, capped at 512).
        preprocessor: a ready preprocessor; default: built from `preset` (or `source` when
            it is a preset), else around the tokenizer of a task `source`.
        preset: where to read the tokenizer from when `source` is an object.
        dropout: dropout before the logits layer.

    Returns:
        A `Labeled<keras-hub class>` (e.g. `LabeledBertTextClassifier`), or a
        `HubCausalClassifier` for backbones keras-hub has no classifier for. It takes raw
        strings in `fit`/`predict` (its preprocessor) and is compiled with keras-hub's
        defaults (Adam 5e-5, sparse cross-entropy from logits, accuracy).
    """
    if isinstance(source, (str, os.PathLike)):
        preset = os.fspath(source) if preset is None else preset
    backbone = hub_backbone(source)
    base = hub_classifier_class(backbone)
    cls = _labeled(base) if base is not None else HubCausalClassifier
    max_length = getattr(backbone, "max_sequence_length", None) or 512
    sequence_length = sequence_length or min(max_length, 512)
    if not isinstance(sequence_length, int) or not 2 <= sequence_length <= max_length:
        raise ValueError(
            f"sequence_length must be an int in [2, {max_length}] (the backbone's "
            f"max_sequence_length), got {sequence_length!r}."
        )
    if preprocessor is None:
        preprocessor = _preprocessor(base, source, preset, sequence_length)
    return cls(
        backbone=backbone,
        num_classes=num_classes,
        preprocessor=preprocessor,
        dropout=dropout,
        label_names=label_names,
    )


def _preprocessor(base, source, preset, sequence_length):
    if base is not None and preset is not None:
        return base.preprocessor_cls.from_preset(preset, sequence_length=sequence_length)
    tokenizer = getattr(getattr(source, "preprocessor", None), "tokenizer", None)
    if tokenizer is None and preset is not None:
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    if tokenizer is None:
        raise ValueError(
            "No tokenizer: pass preset= (a preset name or directory with the tokenizer) or "
            "preprocessor=, or a task source that has a preprocessor."
        )
    if base is not None:
        return base.preprocessor_cls(tokenizer=tokenizer, sequence_length=sequence_length)
    return CausalClassifierPreprocessor(tokenizer, sequence_length=sequence_length)


def hub_masked_lm(preset, sequence_length=128, **preprocessor_kwargs):
    """keras-hub's `MaskedLM` for a BERT-like preset (name or directory), for continued
    pretraining on raw strings (`mlm.fit(texts)`). Masking is keras-hub's
    `MaskedLMPreprocessor`: `mask_selection_rate=0.15`, `mask_token_rate=0.8`,
    `random_token_rate=0.1` unless overridden in `preprocessor_kwargs`."""
    preset = os.fspath(preset)
    preprocessor = keras_hub.models.MaskedLMPreprocessor.from_preset(
        preset, sequence_length=sequence_length, **preprocessor_kwargs
    )
    return keras_hub.models.MaskedLM.from_preset(preset, preprocessor=preprocessor)


def hub_causal_lm(preset, sequence_length=128):
    """keras-hub's `CausalLM` for a decoder-only preset, for continued pretraining on raw
    strings (`lm.fit(texts)`: next-token loss on real tokens)."""
    preset = os.fspath(preset)
    preprocessor = keras_hub.models.CausalLMPreprocessor.from_preset(
        preset, sequence_length=sequence_length
    )
    return keras_hub.models.CausalLM.from_preset(preset, preprocessor=preprocessor)


def transfer_backbone(source, classifier, strict=True):
    """Copy a (pretrained) backbone's weights into `classifier.backbone`, key by key.

    `ptft_keras.transfer.weights.transfer_weights`: every variable checked for name and
    shape before anything is copied, read back afterwards; returns the `TransferReport`
    (also kept as `classifier.transfer_report`). `source`: a keras-hub backbone or task.
    """
    from ptft_keras.transfer.weights import transfer_weights

    report = transfer_weights(hub_backbone(source), classifier.backbone, strict=strict)
    classifier.transfer_report = report
    return report
