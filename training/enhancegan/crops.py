"""The crop guide's training and evaluation on the synthetic recomposition set (recompose.py).

Training (a deviation from the paper, whose crop head learns only from the discriminator, with a fine-tuning
on a labelled crop set that we do not have: here the recomposition set is the labelled set):
- the ``CropScorer`` learns, for candidate boxes of a canvas, their IoU with the true frame (binary cross-
  entropy against the IoU as a soft label); candidates are the grid the daemon scores, boxes jittered around
  the true frame, and the true frame itself;
- the paper's crop head (top-K pooled [scale x, scale y, translation]) learns the true frame (L1).
The backbone is frozen: canvases' pyramids are computed once.

Evaluation: the ranked best box against the true frame, by IoU and boundary displacement error (the mean
distance of the four sides, as a share of the canvas's width or height), next to two heuristics told the
true frame's aspect ratio and size: a centred box, and a rule-of-thirds box that puts the largest face
(OpenCV's Haar cascade) or the saliency centroid (spectral residual) on the nearest thirds point.
"""

import hashlib
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from backend.models.backbones.cache import FeatureCache
from backend.models.enhancegan.cropping import iou, rank
from backend.models.enhancegan.network import (INPUT_GROUPS, CropScorer, LineEvidence, TopKHead, candidate_boxes, crop_box, head_map,
                                               scorer_inputs)
from training.critic.data import corpus_photos
from training.data.cues import load_rgb

from .recompose import KINDS, RECOMPOSE_VERSION, TRAIN_KINDS, recompose

CACHE = os.path.join(".cache", "train", "enhancegan")
FEATURES_VERSION = 2   # the scorer's inputs: 2 added the line evidence


def load_photos(split, side=768):
    out = []
    for photo_id, path in corpus_photos(split):
        rgb = torch.from_numpy(np.asarray(load_rgb(path), dtype=np.float32) / 255).permute(2, 0, 1)
        out.append((photo_id, upsample_to(rgb, side)))
    return out


def upsample_to(rgb, side):
    from backend.imaging import upsample

    return upsample.downscale(rgb, side)[0]


def canvases(photos, per_photo, kinds, seed):
    """Yield (photo id, kind, canvas, frame) for every photo, ``per_photo`` canvases each, kinds in turn."""
    for index, (photo_id, photo) in enumerate(photos):
        others = [p for j, (_, p) in enumerate(photos) if j != index]
        for k in range(per_photo):
            kind = kinds[(index + k) % len(kinds)]
            rng = np.random.default_rng([seed, index, k])
            chosen = [others[int(i)] for i in rng.choice(len(others), size=min(4, len(others)), replace=False)]
            canvas, frame = recompose(photo, chosen, kind, seed=seed * 100000 + index * 100 + k)
            yield photo_id, kind, canvas, frame


def jittered(frame, count, rng):
    """Boxes around the true frame: each side moved by N(0, s), s log-uniform from 0.002 to 0.15, kept inside."""
    x, y, w, h = frame
    out = [frame]
    for _ in range(count):
        s = float(np.exp(rng.uniform(np.log(0.002), np.log(0.15))))
        x0, y0 = x + rng.normal(0, s), y + rng.normal(0, s)
        x1, y1 = x + w + rng.normal(0, s), y + h + rng.normal(0, s)
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1)
        if x1 - x0 > 0.1 and y1 - y0 > 0.1:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def build(split, per_photo, kinds, seed, critic_head, log=print):
    """Per canvas: the scorer's inputs for its candidates, their IoU with the frame, its head map and frame.
    Cached in ``.cache/train/enhancegan`` (keyed by the set's recipe and the critic's weights)."""
    key = hashlib.sha256(json.dumps([RECOMPOSE_VERSION, FEATURES_VERSION, split, per_photo, list(kinds), seed,
                                     [p for p, _ in corpus_photos(split)]]).encode())
    key.update(critic_head.fc.weight.detach().numpy().tobytes())
    path = os.path.join(CACHE, "crops-%s-%s.pt" % (split, key.hexdigest()[:16]))
    if os.path.exists(path):
        return torch.load(path)
    cache, rows = FeatureCache(max_entries=1), []
    photos = load_photos(split)
    rng = np.random.default_rng(seed)
    started = time.time()
    for number, (photo_id, kind, canvas, frame) in enumerate(canvases(photos, per_photo, kinds, seed)):
        pyramid = cache.features(canvas[None])
        aspect = canvas.shape[2] / canvas.shape[1]
        grid = candidate_boxes(0.0, aspect)
        grid = grid[torch.from_numpy(rng.choice(len(grid), size=min(80, len(grid)), replace=False))]
        boxes = torch.cat((grid, torch.tensor(jittered(frame, 40, rng), dtype=torch.float32)))
        truth = torch.tensor([frame], dtype=torch.float32)
        rows.append({"inputs": scorer_inputs(pyramid, boxes, critic_head, aspect, LineEvidence(canvas[None])).half(),
                     "iou": iou(boxes, truth)[:, 0], "map": head_map(pyramid)[0].half(), "frame": truth[0],
                     "photo": photo_id, "kind": kind})
        if log and number % 50 == 49:
            log("  %s canvases %d (%.0f s)" % (split, number + 1, time.time() - started))
    os.makedirs(CACHE, exist_ok=True)
    torch.save(rows, path)
    return rows


LISTWISE_TEMPERATURE = 0.05


def train(rows, steps=3000, lr=1e-3, seed=0, groups=tuple(INPUT_GROUPS), listwise=0.0, log=print):
    """(CropScorer, crop TopKHead) trained on ``rows`` of ``build``; the scorer reads the input ``groups``.
    Loss: binary cross-entropy against each candidate's IoU (a calibrated 0..1 score), plus ``listwise`` x
    a listwise term per canvas (cross-entropy of the softmax over its candidates against softmax(IoU / 0.05):
    what the guide needs is the best box of *this* image first)."""
    torch.manual_seed(seed)
    scorer = CropScorer(groups=groups)
    inputs = torch.cat([r["inputs"] for r in rows]).float()[:, scorer.keep]
    targets = torch.cat([r["iou"] for r in rows])
    scorer.feature_mean.copy_(inputs.mean(0))
    scorer.feature_std.copy_(inputs.std(0).clamp_min(1e-4))
    head = TopKHead(4)
    optimiser = torch.optim.AdamW(list(scorer.parameters()) + list(head.parameters()), lr=lr, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    frames = torch.stack([r["frame"] for r in rows])
    offsets = np.cumsum([0] + [len(r["iou"]) for r in rows])


    started = time.time()
    for step in range(steps):
        pick = torch.randint(len(inputs), (512,))
        loss = F.binary_cross_entropy_with_logits(scorer.kept_logits(inputs[pick]), targets[pick])
        chosen = torch.randint(len(rows), (16,)).tolist()
        if listwise:
            for i in chosen[:8]:
                index = torch.arange(int(offsets[i]), int(offsets[i + 1]))
                wanted = F.softmax(targets[index] / LISTWISE_TEMPERATURE, 0)
                loss = loss + listwise / 8 * -(wanted * F.log_softmax(scorer.kept_logits(inputs[index]), 0)).sum()
        boxes = torch.cat([crop_box(head(rows[i]["map"][None].float())) for i in chosen])
        box_loss = (boxes - frames[chosen]).abs().mean()
        optimiser.zero_grad()
        (loss + box_loss).backward()
        optimiser.step()
        schedule.step()
        if log and (step % 500 == 0 or step == steps - 1):
            log("  crop step %4d  scorer BCE %.4f  box L1 %.4f  %.0f s" % (step, float(loss.detach()), float(box_loss.detach()),
                                                                       time.time() - started))
    return scorer.eval(), head.eval()


# ---- evaluation ------------------------------------------------------------------------------------
def boundary_displacement(box, frame):
    """Mean distance of the four sides, each as a share of the canvas's width or height."""
    bx, by, bw, bh = box
    fx, fy, fw, fh = frame
    return (abs(bx - fx) + abs(by - fy) + abs(bx + bw - fx - fw) + abs(by + bh - fy - fh)) / 4


def _box_iou(a, b):
    return float(iou(torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32))[0, 0])


def centred(frame):
    _, _, w, h = frame
    return ((1 - w) / 2, (1 - h) / 2, w, h)


_FACES = None


def _faces(gray):
    global _FACES
    import cv2

    if _FACES is None:
        _FACES = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    return _FACES.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))


def saliency_point(canvas):
    """(x, y) normalised: the largest face's centre, else the spectral-residual saliency centroid (Hou & Zhang)."""
    import cv2

    gray = (canvas.mean(0).numpy() * 255).astype(np.uint8)
    faces = _faces(gray)
    if len(faces):
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return (x + w / 2) / gray.shape[1], (y + h / 2) / gray.shape[0]
    small = cv2.resize(gray.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency, (9, 9), 2.5)
    ys, xs = np.mgrid[0:64, 0:64]
    total = saliency.sum()
    return float((saliency * xs).sum() / total + 0.5) / 64, float((saliency * ys).sum() / total + 0.5) / 64


def thirds(canvas, frame):
    """The frame-sized box that puts the salient point on its nearest thirds intersection, kept inside."""
    _, _, w, h = frame
    px, py = saliency_point(canvas)
    best = None
    for tx in (1 / 3, 2 / 3):
        for ty in (1 / 3, 2 / 3):
            x = min(max(px - tx * w, 0.0), 1 - w)
            y = min(max(py - ty * h, 0.0), 1 - h)
            distance = (x + tx * w - px) ** 2 + (y + ty * h - py) ** 2
            if best is None or distance < best[0]:
                best = (distance, (x, y, w, h))
    return best[1]


def evaluate(split, model_parts, per_photo=4, kinds=KINDS, seed=7, log=print):
    """Rows per canvas: IoU and boundary displacement of ours (free, and told the frame's aspect), the centred
    box and the thirds box."""
    scorer, critic_head, crop_head = model_parts
    cache, rows = FeatureCache(max_entries=1), []
    for photo_id, kind, canvas, frame in canvases(load_photos(split), per_photo, kinds, seed):
        pyramid = cache.features(canvas[None])
        height, width = canvas.shape[1:]
        aspect = width / height
        boxes = {"ours": rank(canvas[None], pyramid, scorer, critic_head, crop_head, count=1)[0],
                 "ours, aspect given": rank(canvas[None], pyramid, scorer, critic_head, crop_head, count=1,
                                            aspect=frame[2] / frame[3] * aspect)[0]}
        boxes = {k: (b.x, b.y, b.width, b.height) for k, b in boxes.items()}
        boxes["centred"] = centred(frame)
        boxes["thirds / face"] = thirds(canvas, frame)
        row = {"photo": photo_id, "kind": kind, "frame": frame, "boxes": boxes,
               "iou": {k: _box_iou(b, frame) for k, b in boxes.items()},
               "bde": {k: boundary_displacement(b, frame) for k, b in boxes.items()}}
        rows.append(row)
        if log:
            log("  %-30s %-8s IoU ours %.3f (aspect %.3f) centred %.3f thirds %.3f"
                % (photo_id[:30], kind, row["iou"]["ours"], row["iou"]["ours, aspect given"], row["iou"]["centred"],
                   row["iou"]["thirds / face"]))
    return rows


CROP_METHODS = ("ours", "ours, aspect given", "centred", "thirds / face")


def crop_summary(rows):
    out = {}
    for kind in tuple(KINDS) + ("seen kinds", "all"):
        if kind == "all":
            subset = rows
        elif kind == "seen kinds":
            subset = [r for r in rows if r["kind"] in TRAIN_KINDS]
        else:
            subset = [r for r in rows if r["kind"] == kind]
        if not subset:
            continue
        out[kind] = {m: {"iou": float(np.mean([r["iou"][m] for r in subset])),
                         "bde": float(np.mean([r["bde"][m] for r in subset])),
                         "iou_at_least_0.75": float(np.mean([r["iou"][m] >= 0.75 for r in subset]))}
                     for m in CROP_METHODS}
        out[kind]["_cases"] = len(subset)
    return out


def format_crop_summary(split, summary):
    lines = ["\n%s split, crops on the recomposition set (IoU / boundary displacement / share with IoU >= 0.75)" % split,
             "| canvases | cases | " + " | ".join(CROP_METHODS) + " |", "|---|---|" + "---|" * len(CROP_METHODS)]
    for kind, table in summary.items():
        lines.append("| %s | %d | " % (kind, table["_cases"]) + " | ".join(
            "%.3f / %.3f / %.0f%%" % (table[m]["iou"], table[m]["bde"], 100 * table[m]["iou_at_least_0.75"])
            for m in CROP_METHODS) + " |")
    return "\n".join(lines)
