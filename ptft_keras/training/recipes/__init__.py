"""Pretrain -> fine-tune recipes, one module per modality.

- `ptft_keras.training.recipes.image`: autoencoder pretraining, imprint -> probe ->
  fine-tune, self-training (keras + numpy: runs on every backend without TensorFlow).

Import the module you need (`from ptft_keras.training.recipes import image`).
"""
