"""`TextClassifier`: a (pretrained) `TransformerBackbone` + pooling + classification head.

    hidden   = backbone({"token_ids", "padding_mask"})     # (batch, seq, hidden)
    features = pool(hidden, padding_mask)                  # (batch, hidden)
    logits   = head(features)                              # (batch, num_classes)

Pooling: `"first"` (the `[CLS]` position), `"mean"` (over real tokens only), `"last"` (the
last real token: in a causal backbone the only position that has seen the whole text),
`"auto"` = last for causal backbones, mean otherwise. The head and the loss come from the
shared `ptft_keras.models.heads` helpers (`build_classification_head`,
`classification_loss`: cross-entropy or hinge).

    lm = MaskedLM(TransformerBackbone(...)); lm.fit(...)
    clf = TextClassifier.from_pretrained(lm, num_classes=2, vocabulary_size=8000,
                                         sequence_length=64)
    print(clf.transfer_report)          # every backbone variable, source -> target
"""

import keras
from keras import ops

from ptft_keras.layers.pooling import SequencePooling
from ptft_keras.layers.reverse_tokens import ReverseTokens
from ptft_keras.models.heads import LOSSES, build_classification_head, classification_loss
from ptft_keras.models.task import BackboneTask
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.specs import LabelMap

POOLINGS = ("auto", "first", "mean", "last")


@keras.saving.register_keras_serializable(package="ptft_keras")
class TextClassifier(BackboneTask, keras.Model):
    """Sequence classifier over a `TransformerBackbone`.

    Args:
        backbone: a `TransformerBackbone` (causal or bidirectional).
        num_classes: number of classes.
        pooling: `"auto"`, `"first"`, `"mean"` or `"last"` (see the module docstring).
        head: `"linear"` or `"cosine"` (`build_classification_head` kinds).
        head_dropout: dropout before the logits layer.
        loss: `"crossentropy"` or `"hinge"`: the default loss of `compile()`.
        label_names: the class names in id order (default `"0"`, `"1"`, ...); stored
            with the model and returned by its export.
        sequence_length: the length texts are packed to for this classifier, in
            fine-tuning and in serving (default and maximum: the backbone's
            `max_sequence_length`). Stored with the model, so the export and
            `ptft predict` pack texts exactly as training did.
        reverse_tokens: read each text right to left (`ReverseTokens`, inside the model):
            the classifier of a *backward* LM, pretrained with
            `packed_token_rows(reverse=True)`. Tokenizer, data and export are unchanged.

    Inputs `{"token_ids", "padding_mask"}` (from `ptft_keras.data.tokenizer.TextEncoder`);
    outputs logits `(batch, num_classes)`. Layer names: `backbone`, `pooling`, `head` (and
    `reverse_tokens` with `reverse_tokens=True`).
    """

    def __init__(
        self,
        backbone,
        num_classes,
        pooling="auto",
        head="linear",
        head_dropout=0.1,
        loss="crossentropy",
        label_names=None,
        sequence_length=None,
        reverse_tokens=False,
        **kwargs,
    ):
        if not isinstance(backbone, TransformerBackbone):
            raise ValueError(
                f"`backbone` must be a TransformerBackbone, received {type(backbone).__name__}."
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an int >= 2, received {num_classes!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received {pooling!r}.")
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, received {loss!r}.")
        mode = pooling if pooling != "auto" else ("last" if backbone.causal else "mean")
        max_length = backbone.max_sequence_length
        sequence_length = max_length if sequence_length is None else sequence_length
        if not isinstance(sequence_length, int) or not 2 <= sequence_length <= max_length:
            raise ValueError(
                f"`sequence_length` must be an int in [2, {max_length}] (the backbone's "
                f"max_sequence_length), received {sequence_length!r}."
            )
        names = LabelMap.for_classes(label_names, num_classes).names

        # === Layers ===
        self.backbone = backbone
        self.reverser = ReverseTokens(name="reverse_tokens") if reverse_tokens else None
        self.pooler = SequencePooling(mode, name="pooling")
        self.head = build_classification_head(
            (backbone.hidden_dim,), num_classes, kind=head, pooling="none", dropout=head_dropout
        )

        # === Functional model ===
        inputs = dict(backbone.input)
        ids, mask = inputs["token_ids"], inputs["padding_mask"]  # (batch, seq) each
        ids = self.reverser(ids, mask) if reverse_tokens else ids
        hidden = backbone({"token_ids": ids, "padding_mask": mask})  # (batch, seq, hidden)
        features = self.pooler(hidden, inputs["padding_mask"])  # (batch, hidden)
        logits = ops.cast(self.head(features), "float32")  # (batch, num_classes)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.pooling = pooling
        self.pooling_mode = mode
        self.head_kind = head
        self.head_dropout = head_dropout
        self.loss_name = loss
        self.label_names = names
        self.sequence_length = sequence_length
        self.reverse_tokens = bool(reverse_tokens)
        self.transfer_report = None

    def compile(self, optimizer="adamw", loss=None, metrics=("accuracy",), **kwargs):
        """Like `Model.compile`, defaulting to this classifier's loss and accuracy."""
        loss = loss or classification_loss(self.loss_name)
        super().compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []), **kwargs)

    def get_config(self):
        return self.task_config(
            num_classes=self.num_classes,
            pooling=self.pooling,
            head=self.head_kind,
            head_dropout=self.head_dropout,
            loss=self.loss_name,
            label_names=list(self.label_names),
            sequence_length=self.sequence_length,
            reverse_tokens=self.reverse_tokens,
        )

    @classmethod
    def from_pretrained(
        cls,
        source,
        num_classes,
        vocabulary_size=None,
        sequence_length=None,
        dropout=None,
        **kwargs,
    ):
        """A classifier whose backbone carries the weights of a pretrained one.

        Args:
            source: a `CausalLM` / `MaskedLM` / `TextClassifier` (anything with a
                `.backbone`), a `TransformerBackbone`, or a path to a `.keras` file of one.
            num_classes: classes of the new head (initialised fresh).
            vocabulary_size: the tokenizer's vocabulary size; if given and the checkpoint's
                differs, a `ValueError` names both values.
            sequence_length: the length texts are packed to (default: the checkpoint's
                `max_sequence_length`); longer than the checkpoint's is a `ValueError`.
            dropout: backbone dropout for fine-tuning (default: the checkpoint's).
            **kwargs: `TextClassifier` arguments (pooling, head, head_dropout, loss).

        The backbone is rebuilt from the checkpoint's config, then every variable is copied
        by `ptft_keras.transfer.weights.transfer_weights` in strict mode; the report is in
        `classifier.transfer_report`.
        """
        from ptft_keras.transfer.weights import transfer_weights

        if isinstance(source, str):
            if not source.endswith(".keras"):
                raise ValueError(f"`source` path must be a `.keras` file, received {source!r}.")
            source = keras.saving.load_model(source, compile=False)
        source_backbone = source if isinstance(source, TransformerBackbone) else None
        source_backbone = source_backbone or getattr(source, "backbone", None)
        if not isinstance(source_backbone, TransformerBackbone):
            raise ValueError(
                "`source` must be a TransformerBackbone or a model with one as `.backbone` "
                f"(CausalLM, MaskedLM, TextClassifier); received {type(source).__name__}."
            )
        config = source_backbone.get_config()
        if vocabulary_size is not None and vocabulary_size != config["vocabulary_size"]:
            raise ValueError(
                f"The checkpoint's vocabulary_size is {config['vocabulary_size']} but the "
                f"classifier's vocabulary_size is {vocabulary_size}; fine-tune with the "
                "tokenizer the checkpoint was pretrained with."
            )
        if sequence_length is not None and sequence_length > config["max_sequence_length"]:
            raise ValueError(
                f"The checkpoint's max_sequence_length is {config['max_sequence_length']} but "
                f"the classifier's sequence_length is {sequence_length}; pretrain with "
                "longer sequences or pack texts to at most the checkpoint's length."
            )
        if dropout is not None:
            config["dropout"] = dropout
        backbone = TransformerBackbone.from_config(config)
        classifier = cls(backbone, num_classes, sequence_length=sequence_length, **kwargs)
        classifier.transfer_report = transfer_weights(source_backbone, classifier.backbone)
        return classifier
