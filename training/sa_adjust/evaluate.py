"""Table 1 of Nam & Kim 2017 on our test split: mean per-pixel CIELab L2 distance to the target.

Rows: Input; the best single global quadratic Lab transform per image fitted to its target (the ceiling
of any global method); a learned global model; SA-AdjustNet with MSE / Huber / Huber+MT / Huber+MT+S.
Every learned row goes through the product path: prediction on the <= 512 px copy, local affine maps
fitted, applied to the pixels (the pairs are 512 px, like Yan et al.'s data). Like for like: for a style
with a brush (watercolor) every row but Input has the same brush strokes after its colour mapping (the
product's, imaging/brush.py), the global rows too, so the table compares colour mappings, not brushes.
"""

import json
import os
import time

import torch

from backend import styles as style_registry
from backend.imaging import brush, color, transforms
from backend.models import sa_adjust as sa
from training.data.pairs import read_image
from training.data.styles import lab_distance

ROWS = (("input", "Input"), ("global-ceiling", "Best global quadratic per image (ceiling)"),
        ("global", "Learned global model"), ("mse", "SA-AdjustNet+MSE"), ("huber", "SA-AdjustNet+Huber"),
        ("huber-mt", "SA-AdjustNet+Huber+MT"), ("huber-mt-s", "SA-AdjustNet+Huber+MT+S"),
        ("shipped", "shipped weights (Huber+MT+S, the manifest's command)"))
PAPER = {"input": (13.86, 19.71, 15.30), "huber-mt": (5.92, 6.66, 6.75), "huber-mt-s": (5.86, 7.03, 6.83),
         "mse": (7.16, 7.06, 6.92), "huber": (6.59, 6.97, 6.81)}


def best_global_quadratic(image, target):
    """Least-squares 3x10 quadratic Lab transform of one image to its target; returns the fitted image."""
    lab_in, lab_target = color.rgb_to_lab(image), color.rgb_to_lab(target)
    basis = color.quadratic_lab_basis(lab_in / 100.0)[0].reshape(10, -1).double()
    goal = lab_target[0].reshape(3, -1).double()
    solution = torch.linalg.lstsq(basis.T, goal.T).solution  # (10, 3)
    fitted = (basis.T @ solution).T.float().reshape(lab_in.shape)
    return color.lab_to_rgb(fitted).clamp(0, 1)


def run_network(net, backbone, image):
    """A trained network (any variant) on one (1, 3, H, W) image, through the product path."""
    if isinstance(net, sa.SAAdjustNet):
        result, _ = sa.adjust(net, image[0])
        return result.clamp(0, 1)[None]
    features = sa.backbone_pyramid(backbone, image)  # the global model: one matrix for the whole image
    lab = sa.network_lab(image)
    with torch.no_grad():
        out = net.transform(features, lab.flatten(2).transpose(1, 2))
    return sa.rgb_from_network_lab(out.transpose(1, 2).reshape(lab.shape)).clamp(0, 1)


def with_brush(image, result):
    """The product's brush strokes (imaging/brush.py) on a (1, 3, H, W) result of ``image``, as sa-adjust
    paints them after its own colour mapping."""
    coefficients = brush.brush_coefficients(image, result, brush.superpixel_labels(result))
    return transforms.apply_colour_transforms(image[0], transforms.ColourTransformMaps(coefficients))[None].clamp(0, 1)


def distances(pairs, produce):
    values = []
    for pair in pairs:
        image, target = read_image(pair.input)[None], read_image(pair.target)[None]
        values.append(lab_distance(produce(image, target), target))
    return sum(values) / max(len(values), 1)


def evaluate_style(style, pairs_test, networks, backbone, log=print):
    """networks: {row id: trained net}. Returns {row id: mean Lab L2}."""
    stroked = style_registry.get(style).brush  # the sa-adjust rows have it from the product path
    finish = (lambda image, result: with_brush(image, result)) if stroked else (lambda image, result: result)
    table = {"input": distances(pairs_test, lambda image, target: image),
             "global-ceiling": distances(pairs_test, lambda image, target: finish(image, best_global_quadratic(image, target)))}
    for row, net in networks.items():
        started = time.time()
        brushed_here = stroked and not isinstance(net, sa.SAAdjustNet)
        table[row] = distances(pairs_test, lambda image, target: (
            finish(image, run_network(net, backbone, image)) if brushed_here else run_network(net, backbone, image)))
        log("  %-12s %.2f  (%.0f s)" % (row, table[row], time.time() - started))
    return table


def format_table(results, styles):
    """Markdown; a brush style's column says that its rows (but Input) include the brush."""
    titles = [s + (" (rows with the brush)" if style_registry.get(s).brush else "") for s in styles]
    lines = ["| method | " + " | ".join(titles) + " |", "|---|" + "---|" * len(styles)]
    for row, title in ROWS:
        if not any(row in results.get(s, {}) for s in styles):
            continue
        cells = ["%.2f" % results[s][row] if row in results.get(s, {}) else "-" for s in styles]
        lines.append("| %s | %s |" % (title, " | ".join(cells)))
    return "\n".join(lines)


def save(results, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
