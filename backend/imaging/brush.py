"""Brush strokes for the watercolor style: every superpixel takes its mean colour.

Yan et al. 2016 emulate watercolor's brush effect with superpixels, and Nam & Kim follow the same
procedure: the network learns the colour mapping, the brush is a fixed step after it. Superpixels (SLIC)
are found on the <= 512 px copy the network saw and carried to full resolution by nearest-neighbour
lookup; the mean colours are taken from the full-resolution pixels, so the result keeps its bit depth.
"""

import numpy as np
import torch

REGION_SIZE = 14        # superpixel side in network pixels (as the style program that made the targets)
COMPACTNESS = 12.0


def superpixel_labels(low_rgb, region_size=REGION_SIZE, compactness=COMPACTNESS):
    """SLIC labels (h, w) of a planar (3, h, w) sRGB image."""
    from skimage.segmentation import slic

    rgb = low_rgb.permute(1, 2, 0).double().numpy()
    segments = max(16, int(rgb.shape[0] * rgb.shape[1] / float(region_size * region_size)))
    return slic(rgb, n_segments=segments, compactness=compactness, start_label=0, channel_axis=2)


def superpixel_brush(image, low_rgb):
    """Flatten the full-resolution planar (3, H, W) ``image`` within the superpixels of ``low_rgb``."""
    labels_low = superpixel_labels(low_rgb)
    height, width = image.shape[1:]
    h, w = labels_low.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    labels = labels_low[rows[:, None], cols[None, :]].ravel()
    counts = np.maximum(np.bincount(labels), 1)
    out = torch.empty_like(image)
    for channel in range(3):
        plane = image[channel].reshape(-1).double().numpy()
        means = np.bincount(labels, weights=plane, minlength=len(counts)) / counts
        out[channel] = torch.from_numpy(means[labels].astype(np.float32)).reshape(height, width)
    return out
