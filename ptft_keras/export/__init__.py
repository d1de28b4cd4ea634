"""ptft_keras.export."""
