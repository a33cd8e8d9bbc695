"""Boundary grids of sa-adjust at 24 megapixels.

    python -m training.sa_adjust.boundary_report [--megapixels 24] [--out docs/edge-aware.jpg]
    python -m training.sa_adjust.boundary_report --styles [--out docs/sa-adjust-boundaries.jpg]

``--styles`` (issue 19): for each style one test photo (never trained on): input | the style's target |
sa-adjust at 512 px | a 1:1 crop of that at the subject's boundary | the same boundary at 24 MP, input and
sa-adjust, 1:1. The boundary is found, not picked: the point where the predicted subject map changes most.

Without it (issue 14): 1:1 crops around subject boundaries, the adjustment map carried to full resolution
bilinearly (before) and edge-aware (now, imaging/mixing.py), with the subject weight.

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


# style, test photo (corpus id): a subject against sky, water or a plain ground in each
STYLE_CASES = (("foreground-pop-out", "skimage-motorcycle_left"), ("local-xpro", "lomiri-16.04-Bridge_by_Sander_Klootwijk"),
               ("watercolor", "mate-backgrounds-YellowFlower"))
CELL = 240


def _fit(image, side=CELL):
    """uint8 (h, w, 3) -> (side, side, 3): fitted inside, white around."""
    scale = side / max(image.shape[:2])
    small = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    canvas = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def _u8(planar):
    return (planar.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _window(image, centre, side=CELL):
    """A 1:1 ``side`` px window of uint8 (H, W, 3) around ``centre`` (y, x) fractions, kept inside."""
    height, width = image.shape[:2]
    y0 = min(max(0, int(centre[0] * height) - side // 2), max(0, height - side))
    x0 = min(max(0, int(centre[1] * width) - side // 2), max(0, width - side))
    return _fit(image[y0:y0 + side, x0:x0 + side], side)


def boundary_point(subject_map, margin=0.12):
    """(y, x) fractions of the point where the subject map (h, w) changes most, away from the frame."""
    smooth = cv2.GaussianBlur(subject_map.astype(np.float32), (0, 0), 2.0)
    strength = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    h, w = strength.shape
    mh, mw = int(margin * h), int(margin * w)
    inner = np.zeros_like(strength)
    inner[mh:h - mh, mw:w - mw] = strength[mh:h - mh, mw:w - mw]
    y, x = np.unravel_index(np.argmax(inner), inner.shape)
    return (y + 0.5) / h, (x + 0.5) / w


def style_row(style, photo_id, megapixels, model):
    from training.data import corpus
    from training.data.pairs import load_split, read_image

    net = model.nets[style]
    pair = next(p for p in load_split(style, "test") if p.id == photo_id)
    small, target = read_image(pair.input), read_image(pair.target)
    result, probabilities = sa.adjust(net, small)
    centre = boundary_point(probabilities[0].numpy())
    record = next(r for r in corpus.photos() if r["id"] == photo_id)
    with Image.open(record["path"]) as original:
        full = at_megapixels(np.asarray(original.convert("RGB")), megapixels)
    layer = pixels.decode(full)
    big, _ = sa.adjust(net, layer.rgb)
    cells = [_fit(_u8(small)), _fit(_u8(target)), _fit(_u8(result)), _window(_u8(result), centre),
             _window(full, centre), _window(_u8(big), centre)]
    return np.concatenate([np.pad(c, ((0, 4), (0, 4), (0, 0)), constant_values=255) for c in cells], axis=1), full.shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--styles", action="store_true", help="the per-style grid of issue 19")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    if args.styles:
        out = args.out or os.path.join("docs", "sa-adjust-boundaries.jpg")
        rows = []
        for style, photo_id in STYLE_CASES:
            grid_row, shape = style_row(style, photo_id, args.megapixels, model)
            rows.append(grid_row)
            print("%s: %s at %dx%d" % (style, photo_id, shape[1], shape[0]))
        Image.fromarray(np.concatenate(rows, axis=0)).save(out, quality=80, optimize=True)
        print("wrote %s (%d KB)" % (out, os.path.getsize(out) // 1024))
        return
    args.out = args.out or os.path.join("docs", "edge-aware.jpg")
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
