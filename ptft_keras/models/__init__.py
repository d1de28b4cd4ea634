"""ptft_keras.models."""
