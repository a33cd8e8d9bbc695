"""Model ``sa-adjust``: Deep Semantics-Aware Photo Adjustment (Nam & Kim 2017).

    network.py   SAAdjustNet and its parts (the paper's heads on the shared backbone), the dense forward pass
    model.py     the product entry: predict ColourTransformMaps on the low-resolution view, apply at full resolution

Training lives in ``training/sa_adjust/``; the styles and their presets in ``backend/styles.py``.
"""

# the network's API, for the trainers and the evaluation
from .network import (COLOUR_LEVEL, LAB_UNIT, PARSE_CLASSES, RENET_LEVEL, TUNED_FROM_LEVEL,  # noqa: F401
                      LastStageOwner, ReNet, SAAdjustNet, backbone_pyramid, forward_pixels, network_lab,
                      pixel_grid, predict_low_res, rgb_from_network_lab, sample)
from .model import STYLES, SAAdjust, adjust, has_brush, predict_maps, render, weights_name  # noqa: F401
