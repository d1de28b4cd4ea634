"""ptft_keras.peft."""
