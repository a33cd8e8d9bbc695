"""Ranking crop candidates on one backbone pass: the grid, the paper's regressed box, a local refinement.

``rank`` scores every candidate of ``network.candidate_boxes`` and the crop head's own box with the
``CropScorer`` (RoI features of the pyramid the daemon already has), refines the best few by moving each
side a little and keeping what scores better, and keeps the best ``count`` that overlap each other by at
most ``OVERLAP`` IoU, so the alternatives are different framings, not the same box nudged.
"""

import torch

from ...imaging.crops import CropBox, CropBoxes
from .network import LineEvidence, candidate_boxes, crop_box, head_map, scorer_inputs

OVERLAP = 0.6
REFINE_TOP = 4
REFINE_MOVES = (0.04, 0.02, 0.01, 0.005, 0.002)


def iou(a, b):
    """IoU of boxes a (A, 4) and b (B, 4), normalised x, y, w, h -> (A, B)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = (torch.minimum(ax2[:, None], bx2[None]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    h = (torch.minimum(ay2[:, None], by2[None]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp_min(0)
    inter = w * h
    return inter / (a[:, 2:].prod(1)[:, None] + b[:, 2:].prod(1)[None] - inter)


def fit_aspect(boxes, aspect, image_aspect):
    """The largest box of pixel ``aspect`` (w / h) centred in each box; ``image_aspect`` = W / H."""
    x, y, w, h = boxes.unbind(1)
    relative = aspect / image_aspect                   # the wanted w / h in normalised units
    new_w = torch.minimum(w, h * relative)
    new_h = new_w / relative
    return torch.stack((x + (w - new_w) / 2, y + (h - new_h) / 2, new_w, new_h), 1)


def _inside(boxes):
    x, y, w, h = boxes.unbind(1)
    w, h = w.clamp(0.05, 1.0), h.clamp(0.05, 1.0)
    return torch.stack((x.clamp(0, 1).minimum(1 - w), y.clamp(0, 1).minimum(1 - h), w, h), 1)


def _moves(box, step, aspect, image_aspect):
    """Boxes one move away from ``box`` (4,): each side in or out by ``step`` (with an aspect: shift and scale)."""
    x, y, w, h = box.tolist()
    if aspect:
        out = [(x + dx * step, y + dy * step, w, h) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        for grow in (1 + step, 1 - step):
            out.append((x + w * (1 - grow) / 2, y + h * (1 - grow) / 2, w * grow, h * grow))
    else:
        out = [(x - step, y, w + step, h), (x + step, y, w - step, h), (x, y, w + step, h), (x, y, w - step, h),
               (x, y - step, w, h + step), (x, y + step, w, h - step), (x, y, w, h + step), (x, y, w, h - step)]
    return _inside(torch.tensor(out, dtype=torch.float32))


def rank(rgb, pyramid, scorer, critic_head, crop_head, count=5, aspect=0.0):
    """Ranked CropBoxes (best first) for one image's view ``rgb`` (1, 3, h, w) and its backbone ``pyramid``;
    ``aspect`` = the wanted pixel w / h (0: free). Scores are the scorer's probability that a box frames
    the photo (0..1)."""
    image_aspect = rgb.shape[-1] / rgb.shape[-2]
    lines = LineEvidence(rgb)
    with torch.no_grad():
        regressed = crop_box(crop_head(head_map(pyramid)))
        if aspect:
            regressed = fit_aspect(regressed, aspect, image_aspect)
        boxes = torch.cat((candidate_boxes(aspect, image_aspect), _inside(regressed)))

        def score(candidates):
            return torch.sigmoid(scorer(scorer_inputs(pyramid, candidates, critic_head, image_aspect, lines)))

        scores = score(boxes)
        # refine the best few: greedy moves of shrinking size while a move scores better
        for index in scores.topk(min(REFINE_TOP, len(scores))).indices.tolist():
            box, best = boxes[index], float(scores[index])
            for step in REFINE_MOVES:
                improved = True
                while improved:
                    moved = _moves(box, step, aspect, image_aspect)
                    moved_scores = score(moved)
                    improved = bool(moved_scores.max() > best + 1e-4)
                    if improved:
                        box, best = moved[int(moved_scores.argmax())], float(moved_scores.max())
            boxes = torch.cat((boxes, box[None]))
            scores = torch.cat((scores, torch.tensor([best])))
        order = scores.argsort(descending=True)
        kept = []
        for index in order.tolist():
            if len(kept) == count:
                break
            if kept and float(iou(boxes[index:index + 1], boxes[kept]).max()) > OVERLAP:
                continue
            kept.append(index)
    return CropBoxes(CropBox(*(min(1.0, max(0.0, v)) for v in boxes[i].tolist()), score=float(scores[i]))
                     for i in kept)
