"""SavedModel export for serving: image and raw-text classifiers (TensorFlow)."""

from ptft_keras._lazy import lazy_exports

_EXPORTS = {
    "prepare_export_dir": "ptft_keras.export.common",
    "export_image_classifier": "ptft_keras.export.image",
    "export_text_classifier": "ptft_keras.export.text",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
