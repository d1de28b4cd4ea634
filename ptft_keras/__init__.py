"""ptft_keras: pre-training and fine-tuning for Keras 3.

Pretrain on plenty of unlabeled data (reconstruction, next-token or masked-token
prediction), move the pretrained weights into a downstream model explicitly and
verifiably, and fine-tune it with few labels.

    import ptft_keras
    ae = ptft_keras.models.build_conv_autoencoder(latent_dim=64, latent_activation=None)
    clf = ptft_keras.models.Classifier.from_pretrained(ae, num_classes=10)
    print(clf.transfer_report)

`layers` and `models` load eagerly (they register the model classes for
`keras.saving.load_model`, and need no TensorFlow); the other subpackages load on use.
"""

import importlib

from ptft_keras import layers, models

__version__ = "0.1.0"
_SUBPACKAGES = ("data", "export", "peft", "training", "transfer")
__all__ = ["layers", "models", *_SUBPACKAGES, "__version__"]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
