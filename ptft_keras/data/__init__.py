"""ptft_keras.data."""
