"""ptft_keras.transfer."""
