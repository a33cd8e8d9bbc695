"""The "distort and recover" sets of ``eval progressive``: clean held-out photos, spoiled by a documented,
seeded distribution, to be recovered. Two families (DISTORT_VERSION 1):

- ``critic``: the colour and tone kinds the critic was trained to score down (training/critic/degrade.py:
  exposure, gamma, contrast, saturation, white balance, tone curve), 1 kind (p 0.6) or 2 (p 0.4), each at
  amount U(0.3, 0.8). Blur, noise and JPEG are left out: a pointwise filter stack cannot undo them.
- ``other``: operators the critic never saw, as another application would make them: exposure in linear
  light with clipped highlights (+-U(0.6, 1.5) EV), a faded print (blacks lifted to U(0.08, 0.2), whites
  lowered to 1 - U(0.05, 0.2)), a colour-temperature shift in linear light (red x (1 + t), blue x (1 - t),
  |t| ~ U(0.1, 0.3)), a smoothstep S-curve or its inverse blended by U(0.4, 1), a Lab tint (a, b offsets
  U(-12, 12)), a chroma cut in Lab (x U(0.3, 0.7)); 1 (p 0.6) or 2 (p 0.4) of them.
"""

import numpy as np
import torch

from backend.imaging import color
from training.critic.degrade import _apply_kind, _draw_kind

DISTORT_VERSION = 1
CRITIC_KINDS = ("exposure", "gamma", "contrast", "saturation", "white_balance", "tone")
OTHER_KINDS = ("linear_exposure", "fade", "temperature", "s_curve", "tint", "chroma")
FAMILIES = ("critic", "other")


def _to_lab(image):
    return color.rgb_to_lab(image[None])[0]


def _from_lab(lab):
    return color.lab_to_rgb(lab[None])[0]


def _other(image, kind, rng):
    if kind == "linear_exposure":
        ev = rng.uniform(0.6, 1.5) * rng.choice((-1.0, 1.0))
        linear = color.srgb_to_linear(image) * 2.0 ** ev
        return color.linear_to_srgb(linear.clamp(0, 1)), "%+.2f EV linear" % ev
    if kind == "fade":
        black, white = rng.uniform(0.08, 0.2), 1 - rng.uniform(0.05, 0.2)
        return black + (white - black) * image, "fade %.2f..%.2f" % (black, white)
    if kind == "temperature":
        t = rng.uniform(0.1, 0.3) * rng.choice((-1.0, 1.0))
        gains = torch.tensor([1 + t, 1.0, 1 - t])[:, None, None]
        return color.linear_to_srgb((color.srgb_to_linear(image) * gains).clamp(0, 1)), "temperature %+.2f" % t
    if kind == "s_curve":
        weight, sign = rng.uniform(0.4, 1.0), rng.choice((-1.0, 1.0))
        if sign > 0:
            curve = image * image * (3 - 2 * image)
        else:   # the inverse of smoothstep: flattens
            curve = 0.5 - torch.sin(torch.asin((1 - 2 * image.clamp(0, 1))) / 3)
        return image + (curve - image) * weight, "%s %.2f" % ("S-curve" if sign > 0 else "flat curve", weight)
    if kind == "tint":
        da, db = rng.uniform(-12, 12, size=2)
        lab = _to_lab(image)
        lab[1] += da
        lab[2] += db
        return _from_lab(lab), "tint a%+.0f b%+.0f" % (da, db)
    if kind == "chroma":
        factor = rng.uniform(0.3, 0.7)
        lab = _to_lab(image)
        lab[1:] *= factor
        return _from_lab(lab), "chroma x%.2f" % factor
    raise ValueError(kind)


def distort(image, family, seed):
    """(3, H, W) clean sRGB in [0, 1] -> (distorted copy, description); deterministic per (family, seed)."""
    rng = np.random.default_rng([DISTORT_VERSION, FAMILIES.index(family), seed])
    kinds = CRITIC_KINDS if family == "critic" else OTHER_KINDS
    count = 1 if rng.random() < 0.6 else 2
    chosen = [kinds[k] for k in sorted(rng.choice(len(kinds), size=count, replace=False))]
    out, said = image.float(), []
    for kind in chosen:
        if family == "critic":
            amount = float(rng.uniform(0.3, 0.8))
            out = _apply_kind(out, kind, amount, _draw_kind(kind, rng, tuple(image.shape))).clamp(0, 1)
            said.append("%s %.2f" % (kind, amount))
        else:
            out, text = _other(out, kind, rng)
            out = out.float().clamp(0, 1)
            said.append(text)
    return out, ", ".join(said)
