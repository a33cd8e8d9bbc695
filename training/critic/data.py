"""Clean and degraded views of corpus photos, as the critic's cached backbone features.

Each photo gives ``views`` views at the daemon's 512 px: the whole photo, then random crops (40-90 % of
each side, any position); each view gives itself (strength 0) and ``degraded`` degraded copies at
strengths U(0.05, 1) (training) or on a fixed grid (evaluation). The backbone is frozen, so its pooled
features are computed once per image and kept in ``.cache/train/critic`` (keyed by everything that
made them); training the head on them takes seconds.
"""

import hashlib
import json
import os

import numpy as np
import torch

from backend.imaging import upsample
from backend.models.critic import critic_view, pooled_features
from training.data.corpus import DEFAULT_ROOT, MANIFEST
from training.data.cues import load_rgb

from .degrade import DEGRADE_VERSION, degrade

CACHE = os.path.join(".cache", "train", "critic")
EVAL_STRENGTHS = tuple(round(0.1 * k, 1) for k in range(1, 10))   # 0.1 .. 0.9, one seed each


def corpus_photos(split, root=DEFAULT_ROOT):
    """[(id, path)] of one split of the corpus manifest, in manifest order."""
    with open(os.path.join(root, MANIFEST)) as handle:
        photos = json.load(handle)["photos"]
    return [(p["id"], os.path.join(root, p["file"])) for p in photos if p["split"] == split]


def photo_views(path, views, rng):
    """The whole photo at <= 512 px, then ``views - 1`` random crops resized to <= 512 px: (3, h, w) each."""
    rgb = torch.from_numpy(np.asarray(load_rgb(path), dtype=np.float32) / 255).permute(2, 0, 1)
    out = [upsample.downscale(rgb)[0]]
    height, width = rgb.shape[1:]
    for _ in range(views - 1):
        h, w = int(height * rng.uniform(0.4, 0.9)), int(width * rng.uniform(0.4, 0.9))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        out.append(upsample.downscale(rgb[:, top:top + h, left:left + w].contiguous())[0])
    return out


def features_of(images, batch=8):
    """[(3, h, w)] -> (N, F) pooled critic features (the shared backbone, no cache: each image is new)."""
    from backend.models.backbones.cache import FeatureCache

    cache, rows = FeatureCache(max_entries=1), []
    for image in images:
        rows.append(pooled_features(cache.features(critic_view(image[None]))))
    return torch.cat(rows)


def views_features(photos, degraded=6, seed=0, evaluation=False, log=None):
    """[(photo id, views(rng) -> [(3, h, w)])] -> the feature dict of ``build`` (not cached): each view
    with ``degraded`` copies at strengths U(0.05, 1), or with evaluation the EVAL_STRENGTHS grid."""
    features, strengths, groups, photo_ids, kinds = [], [], [], [], []
    for index, (photo_id, make_views) in enumerate(photos):
        rng = np.random.default_rng([seed, index])
        for view in make_views(rng):
            group = int(groups[-1]) + 1 if groups else 0
            images, view_strengths, view_kinds = [view], [0.0], [[]]
            levels = EVAL_STRENGTHS if evaluation else rng.uniform(0.05, 1.0, degraded)
            for strength in levels:
                image, applied = degrade(view, float(strength), seed=int(rng.integers(1 << 31)))
                images.append(image)
                view_strengths.append(float(strength))
                view_kinds.append([kind for kind, _ in applied])
            features.append(features_of(images))
            strengths += view_strengths
            groups += [group] * len(images)
            photo_ids += [photo_id] * len(images)
            kinds += view_kinds
        if log:
            log(index, photo_id)
    return {"features": torch.cat(features), "strength": torch.tensor(strengths), "group": torch.tensor(groups),
            "photo": photo_ids, "kinds": kinds}


def build(split, views=4, degraded=6, seed=0, root=DEFAULT_ROOT, evaluation=False, log=print):
    """Features of one split: {"features" (N, F), "strength" (N,), "group" (N,) (one id per view: its
    clean image and degraded copies), "photo" [ids], "kinds" [[kind, ...]]}, cached on disk."""
    photos = corpus_photos(split, root)
    key = hashlib.sha256(json.dumps([DEGRADE_VERSION, split, views, degraded, seed, evaluation,
                                     [p for p, _ in photos], "pooled-16-32-meanstd-256"]).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, "%s-%s.pt" % (split, key))
    if os.path.exists(path):
        return torch.load(path)
    loaded = ((photo_id, lambda rng, file=file: photo_views(file, 1 if evaluation else views, rng))
              for photo_id, file in photos)
    data = views_features(loaded, degraded, seed, evaluation, log=lambda i, photo_id: log(
        "  %s %d/%d %s" % (split, i + 1, len(photos), photo_id)))
    os.makedirs(CACHE, exist_ok=True)
    torch.save(data, path)
    return data
