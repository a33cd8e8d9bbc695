"""Model ``sa-adjust``: Deep Semantics-Aware Photo Adjustment (Nam & Kim 2017).

    network.py   SAAdjustNet and its parts (the paper's heads on the shared backbone), the dense forward pass
    model.py     the product entry: predict ColourTransformMaps on the low-resolution view, apply at full resolution

Training lives in ``training/sa_adjust/``; the styles and their presets in ``backend/styles.py``.
"""

from .network import *  # noqa: F401,F403  (the network's API, for the trainers)
from .network import COLOUR_LEVEL, PARSE_CLASSES, RENET_LEVEL, TUNED_FROM_LEVEL  # noqa: F401
from .model import STYLES, SAAdjust, adjust, predict_maps, render, weights_name  # noqa: F401
