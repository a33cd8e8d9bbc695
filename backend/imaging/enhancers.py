"""EnhanceGAN's two enhancers as resolution-free values (Deng, Loy & Tang 2018; the exact curves and ranges
are those of the authors' public Lua code, ``shared/papers/README.md``).

**Piecewise colour enhancer** ``Piecewise(a, b, p, q, alpha, beta)`` on CIELab normalised to
L/100, (a+128)/255, (b+128)/255:
- L: a tone curve that clips below ``b`` and above ``1 - b``, lifts the shadows [b, a) with the power
  1/p, keeps the midtones [a, 1 - a) and shapes the highlights [1 - a, 1 - b) with the power 1/q;
- a and b: a stretch about neutral, clamp((m - alpha) / (1 - 2 alpha), 0, 1) (beta for the b channel).
Each parameter lives in its range (``RANGES``): the head's outputs go through hardtanh and an affine map.

**Deep-filtering enhancer**: three colour filters (Photoshop's Photo Filter "Cooling Filter (80)" #00b5ff,
"Warming Filter (85)" #ec8a00 and "Underwater" #00c2b1), mixed by predicted weights w_k in [0, 1]:
out = x + sum_k w_k (f_k(x) - x). ``photo_filter`` is our reference for f_k (multiply by the colour at the
filter's default density 25 %, then the pixel's luminance restored: "preserve luminosity"); the model
approximates each by a small 3-layer CNN, as the paper does (``backend/models/enhancegan/network.py``).

Both are pointwise, so parameters predicted on the 512 px view hold for the full-resolution layer.
"""

from dataclasses import dataclass

import torch

from . import color

# (low, high) per parameter, in the head's order. The authors' code: a [0.10, 0.40], b [0.01, 0.10], p [1, 3],
# q [0.5, 0.99], alpha and beta [0.05, 0.49]. Those ranges leave out the identity (every photo would get at
# least an 11 % colour stretch and a 1 % clip at both ends), so b, alpha and beta open to 0 and q to 1: with
# b = 0, p = q = 1, alpha = beta = 0 the enhancer does nothing, and a photo that needs nothing can get it.
AUTHORS_RANGES = {"a": (0.10, 0.40), "b": (0.01, 0.10), "p": (1.0, 3.0), "q": (0.5, 0.99),
                  "alpha": (0.05, 0.49), "beta": (0.05, 0.49)}
RANGES = {"a": (0.10, 0.40), "b": (0.0, 0.10), "p": (1.0, 3.0), "q": (0.5, 1.0),
          "alpha": (0.0, 0.49), "beta": (0.0, 0.49)}
NAMES = tuple(RANGES)

PHOTO_FILTERS = {"cooling": "#00b5ff", "warming": "#ec8a00", "underwater": "#00c2b1"}
FILTER_LABELS = {"cooling": "Cooling filter (80)", "warming": "Warming filter (85)", "underwater": "Underwater filter"}
DENSITY = 0.25          # Photoshop Photo Filter's default density
LUMA = (0.299, 0.587, 0.114)


def in_range(raw, names=NAMES):
    """Raw head outputs (..., len(names)) -> values in each parameter's range: hardtanh, then affine."""
    low = torch.tensor([RANGES[n][0] for n in names], dtype=raw.dtype, device=raw.device)
    high = torch.tensor([RANGES[n][1] for n in names], dtype=raw.dtype, device=raw.device)
    return low + (torch.nn.functional.hardtanh(raw) + 1) * 0.5 * (high - low)


@dataclass(frozen=True)
class Piecewise:
    a: float
    b: float
    p: float
    q: float
    alpha: float
    beta: float

    def __post_init__(self):
        for name in NAMES:
            low, high = RANGES[name]
            value = getattr(self, name)
            if not low - 1e-6 <= value <= high + 1e-6:
                raise ValueError("piecewise parameter %s must be in [%g, %g], got %g" % (name, low, high, value))

    @classmethod
    def from_tensor(cls, values):
        return cls(*(float(v) for v in values))

    def tensor(self):
        return torch.tensor([getattr(self, n) for n in NAMES])

    def to_json(self):
        return {n: round(getattr(self, n), 5) for n in NAMES}

    def label(self):
        """In words: black and white points, shadow lift, highlight shaping, colour stretch."""
        return ("black point %.0f%%, white point %.0f%%, shadows ^1/%.2f below %.0f%%, highlights ^1/%.2f above "
                "%.0f%%, colour stretch a x%.2f, b x%.2f"
                % (100 * self.b, 100 * (1 - self.b), self.p, 100 * self.a, self.q, 100 * (1 - self.a),
                   1 / (1 - 2 * self.alpha), 1 / (1 - 2 * self.beta)))


def _column(values, index, like):
    """Parameter ``index`` of (N, 6) values, shaped to broadcast over (N, H, W) planes."""
    return values[:, index].to(like).view(-1, *([1] * (like.dim() - 1)))


def l_curve(m, values):
    """The L curve on normalised L ``m`` (N, ...) for (N, 6) parameter values; differentiable."""
    a, b, p, q = (_column(values, i, m) for i in range(4))
    span = (a - b).clamp_min(1e-3)          # a and b may meet at 0.10
    k1 = a / span.pow(1 / p)
    k2 = a / span.pow(1 / q)
    # clamp_min(1e-6), not 0: the power's slope at 0 is infinite and would poison the gradient
    shadows = k1 * (m - b).clamp_min(1e-6).pow(1 / p)
    highlights = k2 * (m - (1 - a)).clamp_min(1e-6).pow(1 / q) + (1 - a)
    out = torch.where(m < a, shadows, m)
    out = torch.where(m >= 1 - a, highlights, out)
    out = torch.where(m < b, torch.zeros_like(m), out)
    return torch.where(m >= 1 - b, torch.ones_like(m), out)


def stretch(m, alpha):
    return ((m - alpha) / (1 - 2 * alpha)).clamp(0, 1)


def piecewise(rgb, values):
    """sRGB (N, 3, H, W) in [0, 1] and (N, 6) parameter values -> enhanced sRGB (N, 3, H, W)."""
    lab = color.rgb_to_lab(rgb)
    m_l = lab[:, 0] / 100
    m_a = (lab[:, 1] + 128) / 255
    m_b = (lab[:, 2] + 128) / 255
    out = torch.stack((l_curve(m_l, values) * 100,
                       stretch(m_a, _column(values, 4, m_a)) * 255 - 128,
                       stretch(m_b, _column(values, 5, m_b)) * 255 - 128), 1)
    return color.lab_to_rgb(out).clamp(0, 1)


def _hex(colour):
    return torch.tensor([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def photo_filter(rgb, name, density=DENSITY):
    """Our reference Photo Filter on sRGB (..., 3, H, W) in [0, 1]: multiply by the filter's colour at
    ``density``, then restore each pixel's luma (Rec. 601 weights), clamped to [0, 1]."""
    colour = _hex(PHOTO_FILTERS[name]).to(rgb).view(3, 1, 1)
    tinted = rgb * (1 - density + density * colour)
    luma = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    restore = ((rgb - tinted) * luma).sum(-3, keepdim=True)
    return (tinted + restore).clamp(0, 1)


def mix_filters(rgb, filtered, weights):
    """x + sum_k w_k (f_k(x) - x): ``filtered`` [(N, 3, H, W)] per filter, ``weights`` (N, K) in [0, 1]."""
    out = rgb
    for k, image in enumerate(filtered):
        out = out + weights[:, k].view(-1, 1, 1, 1).to(rgb) * (image - rgb)
    return out.clamp(0, 1)
