"""Boundary grid: sa-adjust at 24 megapixels, 1:1 crops around subject boundaries, the adjustment map carried
to full resolution bilinearly (before) and edge-aware (now, imaging/mixing.py), with the subject weight.

    python -m training.sa_adjust.boundary_report [--megapixels 24] [--out docs/edge-aware.jpg]

Photos: scikit-learn's china.jpg (the pagoda) and scikit-image's astronaut, chelsea and coffee, brought to
the size asked (Lanczos) so that the 512 px map is carried as far as a 24-MP layer needs. Rows: photo;
columns: input | subject map bilinear | result bilinear | subject map edge-aware | result edge-aware, each a
1440 px window of the full-resolution layer around a subject boundary, shown at 1:3.
"""

import argparse
import os

import cv2
import numpy as np
import torch
from PIL import Image

from backend import models
from backend.imaging import mixing, pixels
from backend.models import sa_adjust as sa
from backend.models.base import View

CROP, SHOWN = 1440, 480  # a 1440 px window of the 24-MP result, shown at 1:3
# photo, style, crop centre as fractions of (y, x): a subject boundary in each
CASES = (("china", "foreground-pop-out", (0.22, 0.36)), ("astronaut", "foreground-pop-out", (0.72, 0.12)),
         ("chelsea", "foreground-pop-out", (0.22, 0.45)), ("coffee", "local-xpro", (0.22, 0.5)))


def photo(name):
    from skimage import data
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg") if name == "china" else getattr(data, name)()


def at_megapixels(image, megapixels):
    height, width = image.shape[:2]
    scale = (megapixels * 1e6 / (height * width)) ** 0.5
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LANCZOS4)


def to_u8(planar):
    """Planar float (C, H, W) -> (SHOWN, SHOWN, 3) uint8."""
    image = (planar.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    image = np.repeat(image, 3, 2) if image.shape[2] == 1 else image
    return cv2.resize(image, (SHOWN, SHOWN), interpolation=cv2.INTER_AREA)


def row(name, style, centre, megapixels, model):
    image = at_megapixels(photo(name), megapixels)
    layer = pixels.decode(image)
    net = model.nets[style]
    maps = sa.predict_maps(net, View(layer))
    height, width = image.shape[:2]
    y0 = min(max(0, int(centre[0] * height) - CROP // 2), height - CROP)
    x0 = min(max(0, int(centre[1] * width) - CROP // 2), width - CROP)
    window = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
    cells = [to_u8(layer.rgb[:, window[0], window[1]])]
    for radius in (0, mixing.EDGE_RADIUS):
        maps.edge_radius = radius
        subject = maps.full_resolution_map(layer.rgb)[:1, window[0], window[1]]
        result = sa.render(layer.rgb, maps, mixing.Mix())
        cells += [to_u8(subject), to_u8(result[:, window[0], window[1]])]
    return np.concatenate([np.pad(c, ((0, 6), (0, 6), (0, 0)), constant_values=255) for c in cells], axis=1), (width, height)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--out", default=os.path.join("docs", "edge-aware.jpg"))
    args = parser.parse_args(argv)
    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    rows = []
    for name, style, centre in CASES:
        grid_row, size = row(name, style, centre, args.megapixels, model)
        rows.append(grid_row)
        print("%s (%s) at %dx%d" % (name, style, *size))
    with torch.no_grad():
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.out, quality=85, optimize=True)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
