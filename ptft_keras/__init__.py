"""ptft_keras: pre-training and fine-tuning for Keras 3.

Pretrain on plenty of unlabeled data (reconstruction, next-token or masked-token
prediction), move the pretrained weights into a downstream model explicitly and
verifiably, and fine-tune it with few labels.

    import ptft_keras
    ae = ptft_keras.models.build_conv_autoencoder(latent_dim=64, latent_activation=None)
    clf = ptft_keras.models.Classifier.from_pretrained(ae, num_classes=10)
    print(clf.transfer_report)

`layers`, `models` and `variables` load eagerly and need no TensorFlow. Importing them
here is what registers every toolkit layer and model class (their
`keras.saving.register_keras_serializable` decorators run), so `keras.saving.load_model`
and `transfer_weights` can read any `.keras` file the toolkit wrote; keras-hub models
register when `ptft_keras.models.hub` is imported. `ptft_keras.data`, `.export`, `.peft`,
`.training` and `.transfer` load when first named. Dependencies run one way:
layers -> models -> variables -> transfer, peft -> training -> export -> cli.
"""

import importlib

from ptft_keras import layers, models, variables

__version__ = "0.2.0"
_SUBPACKAGES = ("data", "export", "peft", "training", "transfer")
__all__ = ["layers", "models", "variables", *_SUBPACKAGES, "__version__"]


def __getattr__(name):  # PEP 562: `ptft_keras.data` without importing TensorFlow up front
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
