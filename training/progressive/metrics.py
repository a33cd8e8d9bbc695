"""The measures of ``eval progressive``: PSNR and CIEDE2000 of a recovered image against its clean
original, and EXPOSURE's histogram intersection (Hu et al. 2018, used by PIEA): over 64x64 patches, the
distributions of luminance mean, contrast (2x luminance standard deviation) and mean saturation, 32 bins
on [0, 1], output set against ground-truth set; 1 = the same distributions."""

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import deltaE_ciede2000, rgb2lab

PATCH = 64
BINS = 32


def psnr(output, target):
    mse = float(((output.clamp(0, 1) - target) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def ciede2000(output, target):
    lab = [rgb2lab(image.clamp(0, 1).permute(1, 2, 0).numpy()) for image in (output, target)]
    return float(deltaE_ciede2000(lab[0], lab[1]).mean())


def patch_statistics(image):
    """(3, H, W) -> {"luminance", "contrast", "saturation"}: one value per 64x64 patch."""
    image = image.clamp(0, 1)
    lum = (0.27 * image[0] + 0.67 * image[1] + 0.06 * image[2])[None, None]
    mean = F.avg_pool2d(lum, PATCH)
    std = (F.avg_pool2d(lum * lum, PATCH) - mean * mean).clamp_min(0).sqrt()
    value, minimum = image.amax(0), image.amin(0)
    saturation = ((value - minimum) / value.clamp_min(1e-6))[None, None]
    return {"luminance": mean.flatten().numpy(), "contrast": (2 * std).flatten().clamp(0, 1).numpy(),
            "saturation": F.avg_pool2d(saturation, PATCH).flatten().numpy()}


def histogram_intersection(outputs, targets):
    """Sets of images -> {statistic: intersection in [0, 1]} over all their patches."""
    result = {}
    stats = [[patch_statistics(image) for image in images] for images in (outputs, targets)]
    for name in ("luminance", "contrast", "saturation"):
        hist = [np.histogram(np.concatenate([s[name] for s in group]), bins=BINS, range=(0, 1))[0] for group in stats]
        hist = [h / max(1, h.sum()) for h in hist]
        result[name] = float(np.minimum(hist[0], hist[1]).sum())
    return result
