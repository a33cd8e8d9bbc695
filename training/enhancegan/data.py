"""EnhanceGAN's training data: "good" clean views of the training photos and "bad" colour/tone-spoiled copies.

Each training photo gives ``views`` views (the whole photo at <= 512 px, then random crops, as the critic's
data); each view gives ``bad`` spoiled copies: 1 (p 0.6) or 2 (p 0.4) of the critic's colour and tone kinds
(exposure, gamma, contrast, saturation, white balance, tone curve; training/critic/degrade.py) at amounts
U(0.15, 0.9). Blur, noise and JPEG are left out: neither enhancer is meant to undo them.

Kept per view: the clean copy at the critic's 256 px and its pooled critic features (the WGAN's real
samples); per bad copy: its 256 px copy (what the enhancer is applied to during training) and the
generator heads' map of its 512 px copy (network.head_map of the frozen backbone, as the daemon computes
it). Cached in ``.cache/train/enhancegan`` keyed by everything that made it.
"""

import hashlib
import json
import os

import numpy as np
import torch

from backend.imaging import upsample
from backend.models.backbones.cache import FeatureCache
from backend.models.critic.network import critic_view, pooled_features
from backend.models.enhancegan.network import head_map
from training.critic.data import corpus_photos, photo_views
from training.critic.degrade import DEGRADE_VERSION, _apply_kind, _draw_kind
from training.data.corpus import DEFAULT_ROOT

CACHE = os.path.join(".cache", "train", "enhancegan")
COLOUR_KINDS = ("exposure", "gamma", "contrast", "saturation", "white_balance", "tone")
DATA_VERSION = 1


def spoil(view, rng):
    """(3, H, W) clean sRGB -> (spoiled copy, [(kind, amount)]) from the documented distribution above."""
    count = 1 if rng.random() < 0.6 else 2
    chosen = sorted(rng.choice(len(COLOUR_KINDS), size=count, replace=False))
    image, said = view.float(), []
    for k in chosen:
        kind, amount = COLOUR_KINDS[k], float(rng.uniform(0.15, 0.9))
        image = _apply_kind(image, kind, amount, _draw_kind(kind, rng, tuple(view.shape))).clamp(0, 1)
        said.append((kind, round(amount, 3)))
    return image, said


def build(split, views=4, bad=4, seed=0, root=DEFAULT_ROOT, log=print):
    """[{"photo", "clean" (3, h, w) 256 px, "clean_pooled" (F,), "bad": [(3, h, w)], "bad_maps": [(432, h32, w32)],
    "said": [...]}] for every view of the split."""
    photos = corpus_photos(split, root)
    key = hashlib.sha256(json.dumps([DATA_VERSION, DEGRADE_VERSION, split, views, bad, seed,
                                     [p for p, _ in photos]]).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, "%s-%s.pt" % (split, key))
    if os.path.exists(path):
        return torch.load(path)
    cache, rows = FeatureCache(max_entries=1), []
    for index, (photo_id, file) in enumerate(photos):
        rng = np.random.default_rng([seed, index])
        for view in photo_views(file, views, rng):
            small = critic_view(view[None])[0]
            row = {"photo": photo_id, "clean": small,
                   "clean_pooled": pooled_features(cache.features(small[None]))[0], "bad": [], "bad_maps": [], "said": []}
            for _ in range(bad):
                spoiled, said = spoil(view, rng)
                row["bad"].append(critic_view(spoiled[None])[0])
                row["bad_maps"].append(head_map(cache.features(upsample.downscale(spoiled)))[0].half())
                row["said"].append(said)
            rows.append(row)
        if log:
            log("  %s %d/%d %s" % (split, index + 1, len(photos), photo_id))
    os.makedirs(CACHE, exist_ok=True)
    torch.save(rows, path)
    return rows
