"""ptft_keras.training."""
