"""ptft_keras.layers."""
