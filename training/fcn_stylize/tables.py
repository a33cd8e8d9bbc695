"""Tables 1 and 2 of Zhu & Yu 2018 on our split: mean per-pixel CIELab L2 distance to the style's target.

Table 1 (the local styles): Input, the paper's FCN (ours) and sa-adjust beside it, each through its product
path at the pairs' 512 px (the view is the whole image there, so the seam's application is exact). For
watercolor every row but Input carries the product's brush strokes after its colour mapping (both models
paint the same strokes; like for like with sa-adjust's Table 1). Table 2 (the global styles cold and
spring): Input and ours. Ratios are ours / Input (targets: <= 0.5 local, <= 0.2 global).
"""

import json
import os
import time

import torch

from backend import styles as style_registry
from backend.models import fcn_stylize as model
from training.data.pairs import ensure_pairs, load_split, read_image
from training.data.styles import lab_distance

PAPER = {"foreground-pop-out": (13.86, 7.10), "local-xpro": (19.71, 6.98), "watercolor": (15.30, 6.88),
         "cold": (16.95, 1.98), "spring": (18.56, 3.56)}


def fcn_producer(net):
    """The daemon's path for a built-in style (predict on the view, apply through the seam) at the pair's size."""
    return lambda image: model.render(image, model.predict_maps(net, image[None]), None).clamp(0, 1)


def sa_adjust_producer(style):
    from backend.models import sa_adjust

    sa = sa_adjust.SAAdjust()
    sa.load("cpu")
    return lambda image: sa_adjust.adjust(sa.nets[style], image)[0].clamp(0, 1)


def evaluate(split="test", styles=None, nets=None, with_sa_adjust=True, log=print):
    """{style: {"input", "fcn", "sa-adjust"?: mean Lab L2, "photos", "per_photo": {row: {photo: L2}}}}.

    Photos outside, styles inside: every style's pairs share the corpus photo, so the daemon's feature cache
    serves all five styles from one VGG pass a scale (as it would serve five requests on one layer)."""
    styles = tuple(styles or style_registry.STYLES)
    pairs = {style: {p.id: p for p in load_split(ensure_pairs(style, log=log), split)} for style in styles}
    producers = {}
    for style in styles:
        producers[style] = {"input": lambda image: image, "fcn": fcn_producer((nets or {}).get(style) or load_shipped(style))}
        if with_sa_adjust and style_registry.get(style).local:
            producers[style]["sa-adjust"] = sa_adjust_producer(style)
    per_photo = {style: {row: {} for row in producers[style]} for style in styles}
    started = time.time()
    for photo in sorted(pairs[styles[0]]):
        for style in styles:
            pair = pairs[style][photo]
            image, target = read_image(pair.input), read_image(pair.target)
            for row, produce in producers[style].items():
                with torch.no_grad():
                    per_photo[style][row][photo] = lab_distance(produce(image)[None], target[None])
        if log:
            log("  %s done (%.0f s)" % (photo, time.time() - started))
    results = {}
    for style in styles:
        results[style] = {row: sum(v.values()) / len(v) for row, v in per_photo[style].items()}
        results[style]["photos"] = len(pairs[style])
        results[style]["per_photo"] = {row: {k: round(x, 3) for k, x in v.items()} for row, v in per_photo[style].items()}
    return results


def load_shipped(style):
    from backend import weights
    from backend.models.fcn_stylize.network import FCNStylizer

    tensors, metadata = weights.load_with_metadata(model.weights_name(style))
    net = FCNStylizer(json.loads(metadata["config"]))
    net.load_state_dict(tensors, strict=True)
    return net.eval()


def format_tables(results, split):
    lines = []
    local = [s for s in results if style_registry.get(s).local]
    glob = [s for s in results if not style_registry.get(s).local]
    if local:
        lines += ["Table 1: local styles, mean per-pixel CIELab L2 on the %s split (ratio to Input)" % split, "",
                  "| style | photos | Input | ours (FCN) | sa-adjust | paper: Input / Zhu & Yu |", "|---|---|---|---|---|---|"]
        for s in local:
            r = results[s]
            lines.append("| %s%s | %d | %.2f | %.2f (%.2fx) | %s | %.2f / %.2f |" % (
                s, " (with the brush)" if style_registry.get(s).brush else "", r["photos"], r["input"], r["fcn"],
                r["fcn"] / r["input"], "%.2f (%.2fx)" % (r["sa-adjust"], r["sa-adjust"] / r["input"])
                if "sa-adjust" in r else "-", *PAPER[s]))
        lines.append("")
    if glob:
        lines += ["Table 2: global styles, mean per-pixel CIELab L2 on the %s split (ratio to Input)" % split, "",
                  "| style | photos | Input | ours (FCN) | paper: Input / Zhu & Yu |", "|---|---|---|---|---|"]
        for s in glob:
            r = results[s]
            lines.append("| %s | %d | %.2f | %.2f (%.2fx) | %.2f / %.2f |" % (
                s, r["photos"], r["input"], r["fcn"], r["fcn"] / r["input"], *PAPER[s]))
    return "\n".join(lines)


def save(results, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
