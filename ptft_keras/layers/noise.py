"""`MaskingNoise`: the corruption of a masking (denoising) autoencoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class MaskingNoise(keras.layers.Layer):
    """Zeroes each input value with probability `rate`, only in training.

    Unlike `keras.layers.Dropout` it does not rescale the kept values by 1/(1-rate):
    a denoising autoencoder must see corrupted *pixels*, not rescaled ones.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), got {rate}.")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) >= self.rate
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
