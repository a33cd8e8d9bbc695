"""The degradation distribution the critic learns to score down ("distort and recover", PIEA/EXPOSURE).

``degrade(view, strength, seed)`` spoils a clean view (3, H, W) sRGB in [0, 1] (the <= 512 px copy the
daemon predicts on). The seed draws *what* is done (which kinds, their directions, the curve's shape,
the noise field); ``strength`` in [0, 1] only scales *how much*, so for one seed the damage grows with
strength and strength 0 is the clean view. Documented distribution (DEGRADE_VERSION 1):

- 1 kind with probability 0.5, 2 with 0.3, 3 with 0.2, drawn without replacement from KINDS;
  the first at ``strength``, each further one at ``strength * U(0.3, 1)``;
- colour and tone kinds first (in KINDS order), then blur, noise, JPEG (the order a camera or an
  export would cause them). At amount a:

  exposure       +-2.5 a EV (sign 50/50)             gamma        g = 2.5^(+-a)
  contrast       EXPOSURE's contrast, w = -a (flat, p 0.6) or +a (harsh, p 0.4)
  saturation     desaturate: lerp to luminance by 0.9 a (p 0.6); oversaturate: EXPOSURE's boost at a, twice
  white_balance  gains exp(0.6 a u), u a random unit direction in (R, G, B), luminance kept
  tone           8-step monotone curve, knots 2^(a z_i), z_i ~ U(-1, 1)
  blur           Gaussian, sigma 3 a px (at 512 px)
  noise          Gaussian, sigma 0.10 a (sRGB units), 30 % of it luminance-correlated
  jpeg           quality 95 - 85 a (Pillow, 4:2:0)
"""

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backend.imaging import filters

DEGRADE_VERSION = 1
KINDS = ("exposure", "gamma", "contrast", "saturation", "white_balance", "tone", "blur", "noise", "jpeg")
COUNT_PROBABILITIES = (0.5, 0.3, 0.2)


def _gaussian_blur(image, sigma):
    if sigma < 0.05:
        return image
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image)
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]


def _jpeg(image, quality):
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    return torch.from_numpy(np.asarray(Image.open(buffer).convert("RGB")).astype(np.float32) / 255).permute(2, 0, 1)


def _draw_kind(kind, rng, shape):
    """The seed's part of one kind: directions, shapes, noise fields (independent of strength)."""
    if kind in ("exposure", "gamma"):
        return {"sign": float(rng.choice((-1.0, 1.0)))}
    if kind == "contrast":
        return {"sign": -1.0 if rng.random() < 0.6 else 1.0}
    if kind == "saturation":
        return {"sign": -1.0 if rng.random() < 0.6 else 1.0}
    if kind == "white_balance":
        direction = rng.normal(size=3)
        return {"direction": (direction / np.linalg.norm(direction)).tolist()}
    if kind == "tone":
        return {"z": rng.uniform(-1, 1, filters.CURVE_STEPS).tolist()}
    if kind == "noise":
        field = rng.normal(size=shape).astype(np.float32)
        shared = rng.normal(size=shape[1:]).astype(np.float32)
        return {"field": 0.7 * field + 0.3 * shared[None]}
    return {}


def _apply_kind(image, kind, amount, draw):
    def bank(name, values):
        return filters.FILTERS[name].apply(image, torch.as_tensor(values, dtype=torch.float32))

    if kind == "exposure":
        return bank("exposure", [2.5 * amount * draw["sign"]]).clamp(0, 1)
    if kind == "gamma":
        return bank("gamma", [2.5 ** (amount * draw["sign"])]).clamp(0, 1)
    if kind == "contrast":
        return bank("contrast", [amount * draw["sign"]]).clamp(0, 1)
    if kind == "saturation":
        if draw["sign"] < 0:
            return bank("bw", [0.9 * amount]).clamp(0, 1)
        image = bank("saturation", [amount]).clamp(0, 1)
        return bank("saturation", [amount]).clamp(0, 1)
    if kind == "white_balance":
        return bank("white_balance", np.exp(0.6 * amount * np.asarray(draw["direction"]))).clamp(0, 1)
    if kind == "tone":
        return bank("tone", 2.0 ** (amount * np.asarray(draw["z"]))).clamp(0, 1)
    if kind == "blur":
        return _gaussian_blur(image, 3.0 * amount)
    if kind == "noise":
        return (image + 0.10 * amount * torch.from_numpy(draw["field"])).clamp(0, 1)
    if kind == "jpeg":
        return _jpeg(image, round(95 - 85 * amount)) if amount > 0 else image
    raise ValueError("unknown degradation %r" % kind)


def draw_recipe(seed, shape):
    """What a seed does: [(kind, share of the strength, the kind's draw)], in application order."""
    rng = np.random.default_rng(seed)
    count = int(rng.choice(len(COUNT_PROBABILITIES), p=COUNT_PROBABILITIES)) + 1
    chosen = list(rng.choice(len(KINDS), size=count, replace=False))
    shares = [1.0] + list(rng.uniform(0.3, 1.0, size=count - 1))
    steps = [(KINDS[k], float(share), _draw_kind(KINDS[k], rng, shape)) for k, share in zip(chosen, shares)]
    return sorted(steps, key=lambda step: KINDS.index(step[0]))


def degrade(view, strength, seed):
    """(3, H, W) sRGB in [0, 1] -> (degraded view, [(kind, amount)]); deterministic per (seed, strength)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError("strength must be in [0, 1], got %r" % strength)
    image = view.float()
    applied = []
    for kind, share, draw in draw_recipe(seed, tuple(view.shape)):
        amount = strength * share
        image = _apply_kind(image, kind, amount, draw)
        applied.append((kind, round(amount, 4)))
    return image, applied


def target_distribution(strength, clean_mean=7.5, drop=5.5, sigma=1.0):
    """The score distribution a view of this degradation strength should get: N(7.5 - 5.5 s, 1)
    discretised over 1..10 (mass between half-integers, the tails folded into 1 and 10)."""
    mean = clean_mean - drop * np.asarray(strength, dtype=np.float64)[..., None]
    edges = np.arange(1.5, 10.0, 1.0)
    from scipy.stats import norm

    cdf = norm.cdf((edges - mean) / sigma)
    cdf = np.concatenate([np.zeros_like(mean), cdf, np.ones_like(mean)], -1)
    return torch.from_numpy(np.diff(cdf, axis=-1)).float()
