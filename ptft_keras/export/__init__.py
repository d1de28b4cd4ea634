"""SavedModel export for serving: image and raw-text classifiers (TensorFlow)."""

from ptft_keras.export.common import prepare_export_dir
from ptft_keras.export.image import export_image_classifier
from ptft_keras.export.text import export_text_classifier

__all__ = ["export_image_classifier", "export_text_classifier", "prepare_export_dir"]
