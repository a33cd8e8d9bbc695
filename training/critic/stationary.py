"""The clean photo as a stationary point of the critic in PIEA's parameter space.

PIEA climbs the critic's score S by gradient steps on the filter bank's raw parameters, starting at
identity. A critic trained only to rank clean above degraded can still slope at the clean photo (version 2:
dS/d(raw exposure) = +1.9 on clean validation views: it wants every photo brighter), and the search then
walks away from photos that were right. This table lets training flatten that slope: for clean training
views, the Jacobian J (F x 46) of the pooled backbone features with respect to PIEA's 46 raw parameters at
identity (forward differences; one batch of 47 backbone passes a view), cached once. The head's own
gradient dS/df is cheap, so the term weight x |dS/df . J|^2 costs one double backward through the head per
training step (``train.train(..., stationary=...)``).
"""

import hashlib
import json
import os

import numpy as np
import torch

from backend.models.critic import critic_view, mean_score, pooled_features
from backend.models.progressive import search as piea

from .data import CACHE, corpus_photos, photo_views

DELTA = 1e-2   # the raw parameters' forward-difference step (their ranges' tanh/sigmoid are near-linear there)


def jacobians(split, views, root, seed=0, log=print):
    """{"features" (N, F) clean views' pooled features, "jacobian" (N, F, P)} for ``views`` views of each
    photo of ``split`` (the whole photo and random crops, as data.photo_views), cached in data.CACHE."""
    photos = corpus_photos(split, root)
    raw0 = piea.start_raw(0.0)
    names = list(raw0)
    key = hashlib.sha256(json.dumps([split, views, seed, DELTA, [p for p, _ in photos], names,
                                     "stationary-pooled-16-32-meanstd-256"]).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, "stationary-%s-%s.pt" % (split, key))
    if os.path.exists(path):
        return torch.load(path)
    from backend.models.backbones.cache import BACKBONES, DEFAULT_BACKBONE, DEFAULT_CACHE

    backbone = DEFAULT_CACHE.model(DEFAULT_BACKBONE, "cpu")
    preprocess = BACKBONES[DEFAULT_BACKBONE][1]
    sizes = [raw0[name].numel() for name in names]
    start = torch.cat([raw0[name].flatten() for name in names])
    features, jacobian = [], []
    for index, (photo_id, file) in enumerate(photos):
        rng = np.random.default_rng([seed, 31337, index])
        for view in photo_views(file, views, rng):
            images = []
            with torch.no_grad():
                for k in range(len(start) + 1):
                    flat = start.clone()
                    if k:
                        flat[k - 1] += DELTA
                    raw = {name: part.view_as(raw0[name]) for part, name in zip(flat.split(sizes), names)}
                    images.append(critic_view(piea.render(view[None], raw))[0])
                pooled = pooled_features(backbone.pyramid(preprocess(torch.stack(images))))
            features.append(pooled[0])
            jacobian.append(((pooled[1:] - pooled[0]) / DELTA).T.contiguous())
        if log:
            log("  stationary %s %d/%d %s" % (split, index + 1, len(photos), photo_id))
    table = {"features": torch.stack(features), "jacobian": torch.stack(jacobian), "parameters": names}
    os.makedirs(CACHE, exist_ok=True)
    torch.save(table, path)
    return table


def slope(head, table):
    """dS/d(raw) (N, P) of ``head`` at the table's clean views (differentiable when the head is training)."""
    features = table["features"].clone().requires_grad_(True)
    score = mean_score(head(features)).sum()
    gradient, = torch.autograd.grad(score, features, create_graph=head.training)
    return torch.einsum("bf,bfp->bp", gradient, table["jacobian"])


def penalty(head, table, rows):
    """Mean over ``rows`` of |dS/d(raw)|^2 at those clean views: the training term."""
    return (slope(head, {"features": table["features"][rows], "jacobian": table["jacobian"][rows]}) ** 2).sum(1).mean()
