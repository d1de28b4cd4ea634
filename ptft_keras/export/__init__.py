"""Exports for serving: SavedModels on raw inputs (image and text classifiers, TensorFlow),
and LiteRT / ONNX files checked in their own runtimes (`portable`)."""

from ptft_keras.export.common import prepare_export_dir
from ptft_keras.export.image import export_image_classifier
from ptft_keras.export.portable import export_portable
from ptft_keras.export.text import export_text_classifier

__all__ = [
    "export_image_classifier",
    "export_portable",
    "export_text_classifier",
    "prepare_export_dir",
]
