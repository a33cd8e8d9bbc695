"""The synthetic recomposition set of the crop guide: a photo set into a larger canvas with distracting
margins; the true frame is where the photo lies. Documented, seeded distribution (RECOMPOSE_VERSION 1):

- the photo keeps its aspect and covers U(0.45, 0.85) of the canvas on each of its axes (independently, so
  the canvas's aspect differs from the photo's); with probability 0.25 per side it touches that side of
  the canvas instead (margins on fewer than four sides);
- the margins are one of these kinds, uniformly:
  ``collage``  a different photo of the split, scaled to cover the canvas (parts of other photos);
  ``tiles``    2 to 4 strips of different photos side by side (a contact sheet, a cluttered desk);
  ``clutter``  a mosaic of 12 to 40 random rectangular patches of other photos (zoom-out with clutter);
  ``mat``      a flat or gently graded colour, with a little noise (a mat, a letterbox, a scanner bed);
  ``extend``   the photo itself, mirrored out into the margin, blurred and darkened (a soft extension:
               no hard seam, and the hardest kind). Held out of crop training by default, to measure
               how the guide does on canvases it never saw.
"""

import numpy as np
import torch
import torch.nn.functional as F

from backend.imaging import upsample
from training.critic.degrade import _gaussian_blur

RECOMPOSE_VERSION = 1
KINDS = ("collage", "tiles", "clutter", "mat", "extend")
TRAIN_KINDS = ("collage", "tiles", "clutter", "mat")
CANVAS_SIDE = 512


def _resize(image, height, width):
    return F.interpolate(image[None], size=(max(1, height), max(1, width)), mode="bilinear", antialias=True,
                         align_corners=False)[0]


def _cover(image, height, width, rng):
    """A random crop of ``image`` scaled to cover (height, width)."""
    h, w = image.shape[1:]
    scale = max(height / h, width / w) * rng.uniform(1.0, 1.6)
    big = _resize(image, int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    top = int(rng.integers(0, big.shape[1] - height + 1))
    left = int(rng.integers(0, big.shape[2] - width + 1))
    return big[:, top:top + height, left:left + width]


def _margins(kind, photo, others, height, width, rng):
    if kind == "collage":
        return _cover(others[0], height, width, rng)
    if kind == "tiles":
        count = int(rng.integers(2, 5))
        cuts = np.sort(rng.uniform(0.15, 0.85, count - 1))
        edges = [0] + [int(c * width) for c in cuts] + [width]
        return torch.cat([_cover(others[k % len(others)], height, max(1, edges[k + 1] - edges[k]), rng)
                          for k in range(count)], 2)
    if kind == "clutter":
        canvas = _cover(others[0], height, width, rng)
        for _ in range(int(rng.integers(12, 41))):
            h, w = int(height * rng.uniform(0.08, 0.35)), int(width * rng.uniform(0.08, 0.35))
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            canvas[:, top:top + h, left:left + w] = _cover(others[int(rng.integers(len(others)))], h, w, rng)
        return canvas
    if kind == "mat":
        base = torch.tensor(rng.uniform(0.05, 0.95, 3), dtype=torch.float32).view(3, 1, 1)
        slope = torch.tensor(rng.uniform(-0.15, 0.15, 3), dtype=torch.float32).view(3, 1, 1)
        ramp = torch.linspace(-0.5, 0.5, height).view(1, -1, 1)
        noise = torch.from_numpy(rng.normal(0, 0.015, (1, height, width)).astype(np.float32))
        return (base + slope * ramp + noise).expand(3, height, width).clamp(0, 1).contiguous()
    if kind == "extend":
        pad_h, pad_w = height, width
        padded = F.pad(photo[None], (pad_w // 2, pad_w // 2, pad_h // 2, pad_h // 2), mode="reflect") \
            if min(photo.shape[1:]) > max(pad_h, pad_w) // 2 else photo[None]
        soft = _resize(padded[0], height, width)
        return (_gaussian_blur(soft, rng.uniform(2.0, 6.0)) * rng.uniform(0.6, 0.9)).clamp(0, 1)
    raise ValueError(kind)


def recompose(photo, others, kind, seed):
    """photo (3, h, w) sRGB in [0, 1] (any size), others [(3, h, w)] other photos -> (canvas (3, H, W) with
    the long side CANVAS_SIDE, true frame (x, y, w, h) normalised to the canvas)."""
    rng = np.random.default_rng([RECOMPOSE_VERSION, KINDS.index(kind), seed])
    h, w = photo.shape[1:]
    share_x, share_y = rng.uniform(0.45, 0.85, 2)
    touches = rng.random(4) < 0.25            # left, right, top, bottom
    canvas_w, canvas_h = w / share_x, h / share_y
    scale = CANVAS_SIDE / max(canvas_w, canvas_h)
    canvas_w, canvas_h = int(round(canvas_w * scale)), int(round(canvas_h * scale))
    pw, ph = int(round(w * scale)), int(round(h * scale))
    free_x, free_y = canvas_w - pw, canvas_h - ph
    left = 0 if touches[0] else free_x if touches[1] else int(rng.integers(0, free_x + 1))
    top = 0 if touches[2] else free_y if touches[3] else int(rng.integers(0, free_y + 1))
    small = upsample.downscale(photo, max(ph, pw))[0] if max(h, w) > max(ph, pw) else photo
    small = _resize(small, ph, pw)
    canvas = _margins(kind, small, others, canvas_h, canvas_w, rng).clone()
    canvas[:, top:top + ph, left:left + pw] = small
    frame = (left / canvas_w, top / canvas_h, pw / canvas_w, ph / canvas_h)
    return canvas, frame
