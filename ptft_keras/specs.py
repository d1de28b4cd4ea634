"""What a trained model expects of its inputs and what its outputs mean.

Two small records travel with a model, in its config (so in every `.keras` file) and into
its SavedModel export, so that serving applies exactly the training-time conventions:

- `ImageSpec`: image height, width, channels and how pixel values are scaled.
- `LabelMap`: the class names, in class-id order.

Plain Python (no Keras, no TensorFlow): the data, model and export layers all use them.
"""

import dataclasses
import math

SCALINGS = ("unit", "standard")
MIN_IMAGE_SIDE = 8


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """Image size, channels and value scaling of a model's inputs.

    Args:
        height, width: pixels (>= 8 each).
        channels: 1 (grey) or 3 (RGB).
        scaling: `"unit"`: `pixels / 255`, values in [0, 1] (the decoder ends in a sigmoid
            and reconstructs with binary cross-entropy); `"standard"`: `(pixels / 255 -
            mean) / std` per channel (linear decoder, mean squared error).
        mean, std: per-channel statistics of `pixels / 255`, for `"standard"` only.

    Stored in model configs as `spec.to_config()` and rebuilt with `ImageSpec(**config)`.
    """

    height: int
    width: int
    channels: int = 1
    scaling: str = "unit"
    mean: tuple = ()
    std: tuple = ()

    def __post_init__(self):
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < MIN_IMAGE_SIDE:
                raise ValueError(
                    f"ImageSpec {name} must be an int >= {MIN_IMAGE_SIDE}, got {value!r}."
                )
        if self.channels not in (1, 3):
            raise ValueError(f"ImageSpec channels must be 1 or 3, got {self.channels!r}.")
        if self.scaling not in SCALINGS:
            raise ValueError(f"ImageSpec scaling must be one of {SCALINGS}, got {self.scaling!r}.")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if self.scaling == "standard":
            if len(self.mean) != self.channels or len(self.std) != self.channels:
                raise ValueError(
                    f"scaling='standard' needs one mean and one std per channel "
                    f"({self.channels}); got mean={self.mean}, std={self.std}."
                )
            if any(not s > 0 or math.isnan(s) for s in self.std):
                raise ValueError(f"ImageSpec std must be > 0, got {self.std}.")
        elif self.mean or self.std:
            raise ValueError("mean and std apply to scaling='standard' only.")

    @property
    def shape(self):
        """`(height, width, channels)`."""
        return (self.height, self.width, self.channels)

    def describe(self):
        """`"28x28x1 uint8"`-style text for messages."""
        return f"{self.height}x{self.width}x{self.channels}"

    def to_config(self):
        return dataclasses.asdict(self) | {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_config(cls, config):
        if config is None or isinstance(config, ImageSpec):
            return config
        return cls(**config)

    def scale(self, pixels):
        """uint8-range pixels `(..., channels)` (numpy) -> float32 model inputs."""
        import numpy as np

        x = np.asarray(pixels, dtype="float32") / 255.0
        if self.scaling == "standard":
            x = (x - np.asarray(self.mean, "float32")) / np.asarray(self.std, "float32")
        return x.astype("float32")


class LabelMap:
    """Class names in class-id order; maps raw labels (str or int) to ids and back.

        labels = LabelMap.from_labels(["spam", "ham", "spam", "eggs"])
        labels.names                  # ['eggs', 'ham', 'spam']
        labels.encode(["ham", "eggs"])  # array([1, 0])

    Names are strings. Inferred names are sorted numerically when every label is an
    integer ("2" before "10"), else alphabetically. At least two classes.
    """

    def __init__(self, names):
        names = [str(n) for n in names]
        if len(names) < 2:
            raise ValueError(
                f"A classifier needs at least 2 classes; the labels hold {len(names)}: {names}."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"Label names must be distinct, got {names}.")
        self.names = names
        self._ids = {name: i for i, name in enumerate(names)}

    @classmethod
    def for_classes(cls, names, num_classes):
        """The names of a `num_classes`-way head: `names`, or "0", "1", ... when None."""
        names = [str(i) for i in range(num_classes)] if names is None else list(names)
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} label_names for num_classes={num_classes}: {names}.")
        return cls(names)

    @classmethod
    def from_labels(cls, labels):
        distinct = {str(label).strip() for label in labels}
        if all(_is_int(n) for n in distinct):
            return cls(sorted(distinct, key=lambda n: int(n)))
        return cls(sorted(distinct))

    def __len__(self):
        return len(self.names)

    def __eq__(self, other):
        return isinstance(other, LabelMap) and other.names == self.names

    def __repr__(self):
        return f"LabelMap({self.names})"

    def encode(self, labels, where="labels"):
        """Raw labels -> int64 ids; an unknown label raises naming it and the known ones."""
        import numpy as np

        ids = []
        for i, label in enumerate(labels):
            key = str(label).strip()
            if key not in self._ids:
                raise ValueError(
                    f"{where}: label {label!r} (position {i + 1}) is not one of the model's "
                    f"classes {self.names}."
                )
            ids.append(self._ids[key])
        return np.asarray(ids, dtype="int64")

    def decode(self, ids):
        return [self.names[int(i)] for i in ids]


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True
