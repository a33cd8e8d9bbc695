"""Classical automatic enhancers, the baselines of ``eval progressive`` (and of enhancegan's eval): what a
one-click "Auto" in an editor does without learning. Each maps (3, H, W) sRGB in [0, 1] to the same."""

import cv2
import numpy as np
import torch

LOW, HIGH = 1.0, 99.0   # the percentiles mapped to black and white


def stretch(image, low=LOW, high=HIGH):
    """Percentile contrast stretch, the same for the three channels (so hues are kept)."""
    lo, hi = np.percentile(image.numpy(), [low, high])
    return ((image - float(lo)) / max(float(hi - lo), 1e-3)).clamp(0, 1)


def gray_world_stretch(image):
    """Gray world (each channel scaled to the mean of the three channel means), then the stretch."""
    means = image.mean(dim=(1, 2), keepdim=True)
    balanced = (image * (means.mean() / means.clamp_min(1e-3))).clamp(0, 1)
    return stretch(balanced)


def clahe_l(image, clip=2.0, tiles=8):
    """CLAHE on the L channel of Lab (OpenCV, 8-bit L), chroma untouched."""
    rgb = (image.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return torch.from_numpy(out.astype(np.float32) / 255).permute(2, 0, 1)


BASELINES = {"percentile stretch": stretch, "gray world + stretch": gray_world_stretch, "CLAHE on L": clahe_l}
