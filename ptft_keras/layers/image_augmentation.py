"""`StrongAugment`: the strongly augmented view of consistency training (FixMatch, UDA).

Per image, independently: one random affine warp (rotation, shear, zoom and translation
fused into one `keras.ops.image.affine_transform`, so one resampling), a random
contrast and brightness change, then a random erased patch (`keras.layers.RandomErasing`,
"cutout"). `strength` scales every magnitude at once (0: identity).

Why not `keras.layers.RandAugment`: it draws its operations once per *batch* (every image
of a batch gets the same ops), computes all eleven candidate ops on every call (about 5x
the cost on a 2-core CPU), and several of its ops (colour degeneration, equalisation) are
meant for RGB photos in [0, 255]. FixMatch needs a different strong view per image, and
works on grey digits as on photos; this layer is that, in `keras.ops` (every backend).

    strong = StrongAugment(value_range=(0.0, 1.0), seed=0)
    views = strong(images, training=True)   # (batch, H, W, C) float, same range
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class StrongAugment(keras.layers.Layer):
    """Random per-image affine warp + contrast/brightness + cutout (module docstring).

    Args:
        value_range: `(low, high)` of the input values (e.g. `(0, 1)`); results are
            clipped to it and the cutout fills with its middle.
        strength: multiplies every magnitude below (0 turns the layer into the identity).
        rotation: max rotation in degrees.
        shear: max shear (tangent of the shear angle).
        zoom: max relative zoom in or out.
        translation: max shift as a fraction of the image side.
        contrast: contrast factor drawn from `[1 - contrast, 1 + contrast]`.
        brightness: shift drawn from `+-brightness * (high - low)`.
        cutout: `(min, max)` area fraction of the erased patch, or `None` for no cutout.
        seed: for the layer's `SeedGenerator` (reproducible runs).
    """

    def __init__(
        self,
        value_range=(0.0, 1.0),
        strength=1.0,
        rotation=30.0,
        shear=0.3,
        zoom=0.2,
        translation=0.125,
        contrast=0.5,
        brightness=0.2,
        cutout=(0.05, 0.25),
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(
                f"`value_range` must be (low, high) with high > low, got {value_range}."
            )
        if strength < 0:
            raise ValueError(f"`strength` must be >= 0, got {strength!r}.")
        if cutout is not None and not 0 < cutout[0] <= cutout[1] < 1:
            raise ValueError(f"`cutout` must be (min, max) area fractions in (0, 1), got {cutout}.")
        self.value_range = (low, high)
        self.strength = float(strength)
        self.rotation, self.shear, self.zoom = float(rotation), float(shear), float(zoom)
        self.translation = float(translation)
        self.contrast, self.brightness = float(contrast), float(brightness)
        self.cutout = tuple(float(c) for c in cutout) if cutout is not None else None
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.erasing = None
        if self.cutout is not None:
            self.erasing = keras.layers.RandomErasing(
                factor=(1.0, 1.0),
                scale=self.cutout,
                fill_value=(low + high) / 2,
                value_range=self.value_range,
                seed=seed,
            )

    def build(self, input_shape):
        if self.erasing is not None:
            self.erasing.build(input_shape)
        self.built = True

    def _uniform(self, batch, magnitude):
        return keras.random.uniform(
            (batch,),
            -magnitude * self.strength,
            magnitude * self.strength,
            seed=self.seed_generator,
        )

    def _affine(self, images):
        """Projective transforms `(batch, 8)`: output pixel -> input pixel, about the centre."""
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        angle = self._uniform(batch, self.rotation * math.pi / 180)
        shear = self._uniform(batch, self.shear)
        scale = 1.0 + self._uniform(batch, self.zoom)  # > 1 zooms out (reads a larger area)
        dx = self._uniform(batch, self.translation) * ops.cast(width, "float32")
        dy = self._uniform(batch, self.translation) * ops.cast(height, "float32")
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        a0, a1 = cos, -sin + shear * cos
        b0, b1 = sin, cos + shear * sin
        cx = (ops.cast(width, "float32") - 1.0) / 2.0
        cy = (ops.cast(height, "float32") - 1.0) / 2.0
        a2 = cx - a0 * cx - a1 * cy + dx
        b2 = cy - b0 * cx - b1 * cy + dy
        zeros = ops.zeros_like(a0)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, images, training=False):
        if not training or self.strength == 0:
            return images
        images = ops.cast(images, "float32")
        low, high = self.value_range
        # Pixels from outside the image repeat the nearest edge pixel: black on grey digits,
        # the background on colour images (a black fill painted frames they never have).
        warped = ops.image.affine_transform(
            images, self._affine(images), interpolation="bilinear", fill_mode="nearest"
        )
        batch = ops.shape(images)[0]
        contrast = ops.reshape(1.0 + self._uniform(batch, self.contrast), (-1, 1, 1, 1))
        shift = ops.reshape(self._uniform(batch, self.brightness) * (high - low), (-1, 1, 1, 1))
        mean = ops.mean(warped, axis=(1, 2, 3), keepdims=True)
        out = ops.clip((warped - mean) * contrast + mean + shift, low, high)
        if self.erasing is not None:
            out = self.erasing(out, training=True)
        return ops.cast(out, self.compute_dtype)  # warped in float32, returned as declared

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "value_range": list(self.value_range),
            "strength": self.strength,
            "rotation": self.rotation,
            "shear": self.shear,
            "zoom": self.zoom,
            "translation": self.translation,
            "contrast": self.contrast,
            "brightness": self.brightness,
            "cutout": list(self.cutout) if self.cutout is not None else None,
            "seed": self.seed,
        }
