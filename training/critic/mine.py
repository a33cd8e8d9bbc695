"""Hard negatives for the critic as PIEA's guide: what PIEA's own search makes of training views.

A critic trained only on clean-versus-degraded pairs can still have a maximum away from the clean
photo (measured: 20 steps from a clean validation view moved exposure by +0.2..0.3 EV and cost 11-15 dB),
and PIEA climbs straight to it. So after a first training, the search is run on training views (from
the clean view, and from a colour/tone-degraded copy), and what it produces joins the training data as
a degraded copy whose strength is its colour distance from the clean view (mean CIE76 Delta E, in units
of the distance a strength-1 degradation causes). Retraining on these teaches the critic that the
search's favourite departures are worse than the clean photo; a second round mines the new critic.
Like a GAN's discriminator, but with the generator being PIEA itself and the labels coming from the
known clean original.
"""

import numpy as np
import torch

from backend.imaging import color
from backend.models.progressive import search as piea

from .data import corpus_photos, features_of, photo_views
from .degrade import _apply_kind, _draw_kind

TONE_KINDS = ("exposure", "gamma", "contrast", "saturation", "white_balance", "tone")


def delta_e(a, b):
    """Mean CIE76 colour distance between two (3, H, W) sRGB images."""
    lab = color.rgb_to_lab(torch.stack([a.clamp(0, 1), b.clamp(0, 1)]))
    return float((lab[0] - lab[1]).norm(dim=0).mean())


def _tone_degraded(view, rng):
    kind = TONE_KINDS[int(rng.integers(len(TONE_KINDS)))]
    amount = float(rng.uniform(0.3, 0.8))
    return _apply_kind(view.float(), kind, amount, _draw_kind(kind, rng, tuple(view.shape))).clamp(0, 1), amount


def _groups(root, views, seed, salt, kind, copies_of, log):
    """For every view of every train photo, the group [clean view, a colour/tone-degraded copy,
    *copies_of(view, degraded, rng)], as data.build's feature dict plus "unit": the copies' strengths are
    their mean Delta E from the clean view in units of the Delta E a strength-1 degradation causes (the
    median over the degraded copies, whose strengths are known)."""
    photos = corpus_photos("train", root)
    groups, scale = [], []
    for index, (photo_id, path) in enumerate(photos):
        rng = np.random.default_rng([seed, salt, index])
        for view in photo_views(path, views, rng):
            degraded, amount = _tone_degraded(view, rng)
            groups.append((photo_id, view, degraded, amount, copies_of(view, degraded, rng)))
            scale.append(delta_e(degraded, view) / amount)
        if log:
            log("  %s %d/%d %s" % (kind, index + 1, len(photos), photo_id))
    unit = float(np.median(scale))
    features, strengths, group_ids, photo_ids = [], [], [], []
    for number, (photo_id, view, degraded, amount, copies) in enumerate(groups):
        images = [view, degraded] + copies
        features.append(features_of(images))
        strengths += [0.0, amount] + [min(1.0, delta_e(image, view) / unit) for image in copies]
        group_ids += [number] * len(images)
        photo_ids += [photo_id] * len(images)
    return {"features": torch.cat(features), "strength": torch.tensor(strengths), "group": torch.tensor(group_ids),
            "photo": photo_ids, "kinds": [[kind]] * len(photo_ids), "unit": unit}


def mine(head, root, views=2, steps=piea.STEPS, lr=piea.LEARNING_RATE, seed=0, log=print):
    """PIEA's results as negatives: each group = [clean view, degraded start, PIEA from clean, PIEA from
    degraded] (``_groups``)."""
    critic = piea.Critic(head.eval())

    def found(view, degraded, rng):
        images = []
        for start in (view, degraded):
            stacks, _ = piea.search(start[None], critic, steps=steps, lr=lr, exposure_start=0.0, prior=0.0)
            with torch.no_grad():
                images.append(piea.replay(start[None], stacks[-1])[0])
        return images
    return _groups(root, views, seed, 7919, "mined", found, log)


def random_stack(rng, strength):
    """A random filter-bank stack around identity, scaled by ``strength`` in [0, 1]: the moves PIEA's search
    can make (exposure, gamma, white balance, saturation, tone, contrast, colour curves), each with p 0.6."""
    from backend.imaging import filters

    def on():
        return rng.random() < 0.6

    steps = []
    if on():
        steps.append(("exposure", [float(rng.uniform(-1.5, 1.5) * strength)]))
    if on():
        steps.append(("gamma", [float(np.exp(rng.uniform(-0.6, 0.6) * strength))]))
    if on():
        u = rng.normal(size=3)
        steps.append(("white_balance", np.exp(0.3 * strength * u / np.linalg.norm(u)).tolist()))
    if on():
        steps.append(("saturation", [float(rng.uniform(0, 1) * strength)]))
    if on():
        steps.append(("tone", (2.0 ** (0.6 * strength * rng.uniform(-1, 1, filters.CURVE_STEPS))).tolist()))
    if on():
        steps.append(("contrast", [float(rng.uniform(-0.6, 0.6) * strength)]))
    if on():
        steps.append(("color", np.clip(1 + 0.1 * strength * rng.uniform(-1, 1, 3 * filters.CURVE_STEPS), 0.9, 1.1).tolist()))
    return filters.FilterStack.parse({"filters": [{"name": n, "values": v} for n, v in steps]})


def nearby(root, views=2, copies=6, seed=0, log=print):
    """Small random filter-bank moves of train views: each group = [clean view, a colour/tone-degraded copy,
    ``copies`` moves at strengths U(0.03, 0.6)] (``_groups``). Dense samples right around the clean photo, in
    PIEA's own parameter space, so the critic's optimum sits at the clean photo."""
    def moved(view, degraded, rng):
        with torch.no_grad():
            return [piea.replay(view[None], random_stack(rng, float(rng.uniform(0.03, 0.6))))[0]
                    for _ in range(copies)]
    return _groups(root, views, seed, 104729, "nearby", moved, log)
