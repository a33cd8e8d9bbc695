"""Brush strokes for the watercolor style: colour flattened within superpixels, at any resolution.

Yan et al. 2016 emulate watercolor's brush with superpixels, and Nam & Kim follow the same procedure: the
network learns the colour mapping, the brush is a fixed step after it. The strokes are SLIC superpixels of
the <= 512 px view (``REGION_SIZE`` px of it, as the style program that made the targets), so a stroke is
the same fraction of the picture at any size (~160 px of a 24-MP layer), as a painter picks a brush for
the picture, not for its pixel count.

How the strokes reach full resolution: not as labels (nearest-neighbour labels gave staircase edges and
square blocks at 24 MP) but as colour maps. Each preset's colours are flattened within the strokes at the
view's resolution, and a local affine colour map of the view is fitted to that flat picture (the guided
filter's fit, ``upsample.fit_local_affine``, with zero slope where the view's window is flat), which the
shared application (``imaging/transforms.py``) slices and applies to the full-resolution pixels like any
other preset. A stroke's colour edge therefore falls on the photo's own edge at full resolution, texture
finer than the view is flattened within its stroke (the fit's slope is ~0 inside a stroke), and the brush
adds nothing to the full-resolution pass (tests/test_sa_adjust.py measures both).

The fit's window, on watercolor's validation split (15 photos, Lab L2 to the targets, the weights before
issue 19's retraining): radius 1 9.221, radius 2 9.212, radius 1 with eps 1e-2 9.222; radius 2 kept
(eps 3e-4 and below let the fit overshoot next to edges at 24 MP, which the edge test catches).

Tensors: low-resolution images (1, 3, h, w) or (K, 3, h, w) sRGB in [0, 1]; labels (h, w) int.
"""

import torch

from . import upsample

REGION_SIZE = 14        # superpixel side in view pixels (as the style program that made the targets)
COMPACTNESS = 12.0
FIT_RADIUS = 2          # the affine fit's window at the view's resolution (5x5; chosen on watercolor's val split, below)
FIT_EPS = 1e-3          # smaller lets the fit extrapolate near edges: overshoot ramps at 24 MP (tested)


def superpixel_labels(rgb, region_size=REGION_SIZE, compactness=COMPACTNESS):
    """SLIC labels (h, w) of a (1, 3, h, w) or planar (3, h, w) sRGB image (scikit-image, Lab k-means)."""
    from skimage.segmentation import slic

    planar = rgb[0] if rgb.dim() == 4 else rgb
    array = planar.permute(1, 2, 0).double().cpu().numpy()
    segments = max(16, int(array.shape[0] * array.shape[1] / float(region_size * region_size)))
    return slic(array, n_segments=segments, compactness=compactness, start_label=0, channel_axis=2)


def flatten(images, labels):
    """Each superpixel of ``labels`` (h, w) takes its mean colour, in every image of (N, 3, h, w)."""
    flat_labels = torch.from_numpy(labels.ravel()).long()
    count = int(flat_labels.max()) + 1
    planes = images.double().flatten(2)                                                   # (N, 3, h*w)
    sums = torch.zeros(planes.shape[:2] + (count,), dtype=torch.float64).index_add_(2, flat_labels, planes)
    sizes = torch.bincount(flat_labels, minlength=count).clamp_min(1).to(torch.float64)
    return (sums / sizes)[:, :, flat_labels].reshape(images.shape).to(images.dtype)


def brush_coefficients(view_rgb, styled, labels):
    """Affine colour maps (1, 12K, h, w) that turn the view (1, 3, h, w) into each preset's styled colours
    (K, 3, h, w) flattened within the strokes ``labels``: the brush as a preset of imaging.transforms."""
    flat = flatten(styled, labels)
    return torch.cat([upsample.fit_local_affine(view_rgb, preset[None], FIT_RADIUS, FIT_EPS, prior=None)
                      for preset in flat], dim=1)
