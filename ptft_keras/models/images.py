"""Image inputs shared by the image models: the shape check every image model runs first."""

from keras import ops


def prepare_images(images, expected_shape):
    """Reshape grey `(batch, H, W)` <-> `(batch, H, W, 1)` to `expected_shape`.

    Raises a ValueError naming both shapes when the images cannot match (another size,
    another channel count).
    """
    expected = tuple(expected_shape)
    got = tuple(images.shape[1:])
    if got == expected:
        return images
    squeeze = lambda s: tuple(d for d in s if d != 1)  # (28, 28, 1) ~ (28, 28)
    if len(got) in (2, 3) and squeeze(got) == squeeze(expected) and None not in got:
        return ops.reshape(images, (-1,) + expected)
    optional = " (the trailing channel of 1 is optional)" if expected[-1:] == (1,) else ""
    raise ValueError(
        f"Expected images of shape (batch, {', '.join(map(str, expected))}){optional}, "
        f"got shape {tuple(images.shape)}."
    )
