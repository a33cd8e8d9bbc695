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


def sa_adjust_producers(styles):
    """{local style: sa-adjust's shipped product path}, its networks loaded once for all of them."""
    from backend.models import sa_adjust

    sa = sa_adjust.SAAdjust()
    sa.load("cpu")
    return {style: (lambda image, net=sa.nets[style]: sa_adjust.adjust(net, image)[0].clamp(0, 1))
            for style in styles if style in sa.nets}


def evaluate(split="test", styles=None, nets=None, with_sa_adjust=True, log=print):
    """{style: {"input", "fcn", "sa-adjust"?: mean Lab L2, "photos", "per_photo": {row: {photo: L2}}}}.

    Photos outside, styles inside: every style's pairs share the corpus photo, so the daemon's feature cache
    serves all five styles from one VGG pass a scale (as it would serve five requests on one layer)."""
    styles = tuple(styles or style_registry.STYLES)
    pairs = {style: {p.id: p for p in load_split(ensure_pairs(style, log=log), split)} for style in styles}
    local = [style for style in styles if style_registry.get(style).local]
    beside = sa_adjust_producers(local) if with_sa_adjust and local else {}
    producers = {}
    for style in styles:
        producers[style] = {"input": lambda image: image, "fcn": fcn_producer((nets or {}).get(style) or load_shipped(style))}
        if style in beside:
            producers[style]["sa-adjust"] = beside[style]
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
    """Table 1 (the local styles, sa-adjust beside the FCN) and Table 2 (the global ones), in markdown."""
    def measured(r, row):
        return "%.2f (%.2fx)" % (r[row], r[row] / r["input"]) if row in r else "-"

    lines = []
    for number, local, kind, rows in ((1, True, "local", ("fcn", "sa-adjust")), (2, False, "global", ("fcn",))):
        chosen = [s for s in results if style_registry.get(s).local == local]
        if not chosen:
            continue
        titles = ["ours (FCN)", "sa-adjust"][:len(rows)]
        lines += ["Table %d: %s styles, mean per-pixel CIELab L2 on the %s split (ratio to Input)" % (number, kind, split),
                  "", "| style | photos | Input | %s | paper: Input / Zhu & Yu |" % " | ".join(titles),
                  "|---|---|---|" + "---|" * (len(rows) + 1)]
        for s in chosen:
            r = results[s]
            name = s + (" (with the brush)" if style_registry.get(s).brush else "")
            lines.append("| %s | %d | %.2f | %s | %.2f / %.2f |" % (
                name, r["photos"], r["input"], " | ".join(measured(r, row) for row in rows), *PAPER[s]))
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def save(results, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
