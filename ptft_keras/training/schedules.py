"""Warmup-then-decay learning-rate schedules (for AdamW fine-tuning and pretraining).

`warmup_then_decay(peak, total_steps, ...)` gives linear warmup from 0 to `peak` over the
first `warmup_steps`, then a decay to `peak * final_fraction` at `total_steps`:

- `decay="cosine"` returns Keras' own `keras.optimizers.schedules.CosineDecay`, which has
  linear warmup built in (`warmup_target`, `warmup_steps`): the well-kept implementation.
- `decay="linear"` (BERT's schedule) returns `WarmupLinearDecay` below: Keras ships no
  linear decay with warmup (`PolynomialDecay(power=1)` has no warmup phase), so this is
  the one schedule written here. It is registered and serialises with the optimizer.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup 0 -> `peak_learning_rate`, then linear decay to the final rate.

    Args:
        peak_learning_rate: rate reached at the end of warmup.
        warmup_steps: steps of linear warmup (0 = start at the peak).
        decay_steps: steps of linear decay after warmup; the rate then stays at
            `peak_learning_rate * final_fraction`.
        final_fraction: final rate as a fraction of the peak (0.0 = decay to zero).
    """

    def __init__(self, peak_learning_rate, warmup_steps, decay_steps, final_fraction=0.0):
        super().__init__()
        _check_schedule_args(peak_learning_rate, warmup_steps, decay_steps, final_fraction)
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.convert_to_tensor(self.peak_learning_rate, "float32")
        warmup = peak * step / max(self.warmup_steps, 1)
        done = ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        decay = peak * (1.0 - (1.0 - self.final_fraction) * done)
        return ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "final_fraction": self.final_fraction,
        }


def warmup_then_decay(
    peak_learning_rate,
    total_steps,
    warmup_steps=None,
    warmup_fraction=0.1,
    decay="cosine",
    final_fraction=0.0,
):
    """Linear warmup to `peak_learning_rate`, then cosine or linear decay to the end.

    Args:
        peak_learning_rate: the largest rate (reached after warmup).
        total_steps: optimizer steps of the whole run (warmup included).
        warmup_steps: warmup length; default `warmup_fraction * total_steps` (at least 1).
        decay: `"cosine"` (Keras `CosineDecay` with warmup) or `"linear"`.
        final_fraction: rate at `total_steps` as a fraction of the peak.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
        raise ValueError(f"total_steps must be an int >= 2; got {total_steps!r}")
    if warmup_steps is None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1); got {warmup_fraction!r}")
        warmup_steps = max(1, int(round(warmup_fraction * total_steps)))
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"warmup_steps must be an int in [0, total_steps={total_steps}); got {warmup_steps!r}"
        )
    decay_steps = total_steps - warmup_steps
    _check_schedule_args(peak_learning_rate, warmup_steps, decay_steps, final_fraction)
    if decay == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=decay_steps,
            alpha=final_fraction,
            warmup_target=float(peak_learning_rate),
            warmup_steps=warmup_steps,
        )
    if decay == "linear":
        return WarmupLinearDecay(peak_learning_rate, warmup_steps, decay_steps, final_fraction)
    raise ValueError(f"decay must be 'cosine' or 'linear'; got {decay!r}")


def _check_schedule_args(peak_learning_rate, warmup_steps, decay_steps, final_fraction):
    if not isinstance(peak_learning_rate, (int, float)) or peak_learning_rate <= 0:
        raise ValueError(f"peak_learning_rate must be a number > 0; got {peak_learning_rate!r}")
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an int >= 0; got {warmup_steps!r}")
    if not isinstance(decay_steps, int) or decay_steps <= 0:
        raise ValueError(f"decay_steps must be an int > 0; got {decay_steps!r}")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must be in [0, 1]; got {final_fraction!r}")
