"""Weight transfer (strict, reported), freezing policies and staged unfreezing."""

from ptft_keras._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ["transfer_weights", "TransferReport", "WeightTransferError", "variable_map"],
        "ptft_keras.transfer.weights",
    ),
    **dict.fromkeys(
        ["freeze", "unfreeze_all", "unfreeze_top", "unfreeze_matching", "layer_paths"],
        "ptft_keras.transfer.freezing",
    ),
    **dict.fromkeys(
        ["Stage", "fit_stages", "lp_ft_stages", "gradual_unfreezing_stages"],
        "ptft_keras.transfer.unfreezing",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
