"""Picture grid of sa-adjust on the test split: input | style-program target | sa-adjust | adjustment maps.

    python -m training.sa_adjust.report [--style S ...] [--photos 4]   -> training/reports/sa-adjust-STYLE.png
"""

import argparse
import os

import numpy as np
import torch
from PIL import Image

from backend import models
from backend.models import sa_adjust as sa
from training.data.pairs import load_split, read_image

CELL = 220


def cell(tensor_or_array):
    array = tensor_or_array
    if torch.is_tensor(array):
        array = (array.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(array)
    image.thumbnail((CELL, CELL))
    canvas = Image.new("RGB", (CELL, CELL), (255, 255, 255))
    canvas.paste(image.convert("RGB"), ((CELL - image.width) // 2, (CELL - image.height) // 2))
    return np.asarray(canvas)


def map_picture(probabilities):
    """K soft maps -> one colour picture (a colour per preset)."""
    palette = torch.tensor([[230, 80, 60], [60, 130, 230], [90, 190, 80], [240, 200, 60]], dtype=torch.float32) / 255
    k = probabilities.shape[0]
    return torch.einsum("khw,kc->chw", probabilities, palette[:k])


def grid(style, count):
    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    net = model.nets[style]
    rows = []
    for pair in load_split(style, "test")[:count]:
        image, target = read_image(pair.input), read_image(pair.target)
        result, probabilities = sa.adjust(net, image)
        rows.append(np.concatenate([cell(image), cell(target), cell(result), cell(map_picture(probabilities))], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", action="append", choices=sa.STYLES)
    parser.add_argument("--photos", type=int, default=4)
    args = parser.parse_args(argv)
    for style in args.style or [s for s in sa.STYLES if s in models.get("sa-adjust").styles]:
        path = os.path.join("training", "reports", "sa-adjust-%s.png" % style)
        Image.fromarray(grid(style, args.photos)).save(path, optimize=True)
        print("wrote %s" % path)


if __name__ == "__main__":
    main()
