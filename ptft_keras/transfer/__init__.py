"""Weight transfer (strict, reported), freezing policies and staged unfreezing."""

from ptft_keras.transfer.freezing import (
    depth_units,
    freeze,
    layer_paths,
    unfreeze_all,
    unfreeze_matching,
    unfreeze_top,
)
from ptft_keras.transfer.unfreezing import (
    Stage,
    fit_stages,
    gradual_unfreezing_stages,
    lp_ft_stages,
)
from ptft_keras.transfer.weights import (
    TransferReport,
    WeightTransferError,
    transfer_weights,
    variable_map,
)

__all__ = [
    "Stage",
    "TransferReport",
    "WeightTransferError",
    "depth_units",
    "fit_stages",
    "freeze",
    "gradual_unfreezing_stages",
    "layer_paths",
    "lp_ft_stages",
    "transfer_weights",
    "unfreeze_all",
    "unfreeze_matching",
    "unfreeze_top",
    "variable_map",
]
