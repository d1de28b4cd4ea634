"""`ConsistencyTrainer`: FixMatch / UDA consistency training around any classifier.

FixMatch (Sohn et al. 2020) for images, UDA (Xie et al. 2019) for text: each step sees a
labeled batch and `mu` times as many unlabeled inputs. The model predicts each unlabeled
input from a *weak* view; where that prediction is confident (max probability >=
`threshold`) its argmax becomes a pseudo-label, and the *strong* view of the same input
is trained towards it with cross-entropy. Below the threshold an input adds nothing.

    trainer = ConsistencyTrainer(classifier, weak=keras.layers.RandomTranslation(...),
                                 strong=StrongAugment(...), threshold=0.95)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3, use_ema=True), loss=...)
    trainer.fit(batches)   # x = {"labeled": (B, ...), "unlabeled": (mu*B, ...)}, y = (B,)
    classifier.evaluate(test_x, test_y)   # the classifier itself is what was trained

It is a plain `keras.Model`: the unlabeled term is an `add_loss` in `call`, so `fit`,
callbacks, `tf.distribute` strategies and `BackupAndRestore` work unchanged on every
backend, and the labeled term is whatever `compile(loss=...)` says (the classifier's
loss). Labeled, weak and strong views go through the classifier in one concatenated
batch, so batch-norm statistics see all of them (as in FixMatch). Called on a plain
tensor (evaluation, `validation_data`) it is the classifier.

State, kept in non-trainable variables (updated like batch-norm statistics, so they are
checkpointed and work under JAX's stateless training step):
- `confident_share`: share of the last unlabeled batch that passed the threshold
  (logged per epoch as `confident_share` by `ConsistencyLogs`);
- `prediction_mean`: running mean of the weak-view class probabilities, used by
  `distribution_alignment=True` (ReMixMatch, Berthelot et al. 2020) to rescale the
  probabilities towards a uniform class prior before thresholding.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class ConsistencyTrainer(keras.Model):
    """FixMatch-style consistency training of `classifier` (module docstring).

    Args:
        classifier: a model mapping inputs to logits `(batch, num_classes)`.
        weak: layer giving the weak view (applied with `training=True`); `None` = identity.
        strong: layer giving the strong view; for text, a `TokenAugmentation`.
        threshold: confidence a weak-view prediction needs to become a pseudo-label.
        unlabeled_weight: weight of the unlabeled loss (FixMatch's lambda_u).
        distribution_alignment: rescale weak-view probabilities by
            `uniform / prediction_mean` (then renormalise) before thresholding.
        alignment_momentum: momentum of `prediction_mean`.
    """

    def __init__(
        self,
        classifier,
        weak=None,
        strong=None,
        threshold=0.95,
        unlabeled_weight=1.0,
        distribution_alignment=False,
        alignment_momentum=0.999,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"`threshold` must be in [0, 1], got {threshold!r}.")
        if unlabeled_weight < 0:
            raise ValueError(f"`unlabeled_weight` must be >= 0, got {unlabeled_weight!r}.")
        self.classifier = classifier
        self.weak, self.strong = weak, strong
        self.threshold = float(threshold)
        self.unlabeled_weight = float(unlabeled_weight)
        self.distribution_alignment = bool(distribution_alignment)
        self.alignment_momentum = float(alignment_momentum)
        num_classes = getattr(classifier, "num_classes", None) or int(classifier.output_shape[-1])
        self.num_classes = num_classes
        self.confident_share = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="confident_share"
        )
        self.prediction_mean = self.add_weight(
            shape=(num_classes,),
            initializer=keras.initializers.Constant(1.0 / num_classes),
            trainable=False,
            name="prediction_mean",
        )
        self.built = True  # the classifier is built; the augmentations have no weights

    @staticmethod
    def _view(layer, x):
        return x if layer is None else layer(x, training=True)

    def call(self, inputs, training=False):
        if not (isinstance(inputs, dict) and "unlabeled" in inputs):
            return self.classifier(inputs, training=training)
        labeled, unlabeled = inputs["labeled"], inputs["unlabeled"]
        if not training:
            return self.classifier(labeled, training=False)
        views = [self._view(self.weak, labeled), self._view(self.weak, unlabeled)]
        views.append(self._view(self.strong, unlabeled))
        logits = self.classifier(_concatenate(views), training=True)
        n_labeled = ops.shape(_first_tensor(labeled))[0]
        n_unlabeled = ops.shape(_first_tensor(unlabeled))[0]
        labeled_logits = logits[:n_labeled]
        weak_logits = logits[n_labeled : n_labeled + n_unlabeled]
        strong_logits = logits[n_labeled + n_unlabeled :]
        self.add_loss(self.unlabeled_weight * self.unlabeled_loss(weak_logits, strong_logits))
        return labeled_logits

    def unlabeled_loss(self, weak_logits, strong_logits):
        """Mean over the unlabeled batch of mask * CE(pseudo-label, strong logits)."""
        probs = ops.stop_gradient(ops.softmax(ops.cast(weak_logits, "float32"), axis=-1))
        if self.distribution_alignment:
            m = self.alignment_momentum
            self.prediction_mean.assign(
                m * self.prediction_mean + (1 - m) * ops.mean(probs, axis=0)
            )
            probs = probs / (self.num_classes * self.prediction_mean)
            probs = probs / ops.sum(probs, axis=-1, keepdims=True)
        confident = ops.cast(ops.max(probs, axis=-1) >= self.threshold, "float32")
        self.confident_share.assign(ops.mean(confident))
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            ops.argmax(probs, axis=-1), ops.cast(strong_logits, "float32"), from_logits=True
        )
        return ops.mean(confident * cross_entropy)

    def get_config(self):
        return {
            **super().get_config(),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "weak": keras.saving.serialize_keras_object(self.weak),
            "strong": keras.saving.serialize_keras_object(self.strong),
            "threshold": self.threshold,
            "unlabeled_weight": self.unlabeled_weight,
            "distribution_alignment": self.distribution_alignment,
            "alignment_momentum": self.alignment_momentum,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("classifier", "weak", "strong"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _first_tensor(x):
    """The first tensor of `x` (a tensor, or a dict of tensors such as token inputs)."""
    return next(iter(x.values())) if isinstance(x, dict) else x


def _concatenate(views):
    if isinstance(views[0], dict):  # token inputs: {"token_ids", "padding_mask"}
        return {k: ops.concatenate([v[k] for v in views], axis=0) for k in views[0]}
    return ops.concatenate([ops.cast(v, "float32") for v in views], axis=0)


class ConsistencyLogs(keras.callbacks.Callback):
    """Adds the trainer's `confident_share` to each epoch's logs (and so to the progress
    line, `CSVLogger`, TensorBoard). Put it before the loggers in the callback list."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["confident_share"] = float(ops.convert_to_numpy(self.trainer.confident_share))
