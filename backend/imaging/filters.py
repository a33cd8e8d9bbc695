"""The interpretable filter bank of EXPOSURE (Hu et al. 2018), which PIEA (Du et al. 2019) searches.

Every filter is differentiable and is the identity at its ``neutral`` values. Values are in natural
units (EV, gamma exponent, lerp weights...) and checked against the ranges of the papers; the
optimiser works on unbounded *raw* parameters mapped into those ranges by ``from_raw`` (tanh_range
or sigmoid), exactly as EXPOSURE does. Images are (*, 3, H, W) sRGB-encoded values, nominally in
[0, 1] (EXPOSURE and PIEA apply the filters to the values they are given). Filters are pointwise,
so a stack can be applied to a 24-megapixel layer in tiles (``apply_stack_tiled``).

    >>> stack = parse_stack({"filters": [{"name": "exposure", "values": [0.5]}]})
    >>> apply_stack(torch.full((1, 3, 1, 1), 0.25), stack).flatten().tolist()
    [0.3535..., ...]
"""

import math

import torch

from ..jobs import checkpoint
from . import mixing
from .color import luminance

CURVE_STEPS = 8


def tanh_range(low, high, raw):
    return (torch.tanh(raw) * 0.5 + 0.5) * (high - low) + low


def _atanh_range(low, high, value):
    unit = ((value - low) / (high - low)).clamp(1e-6, 1 - 1e-6)
    return torch.atanh(unit * 2 - 1)


def _lerp(a, b, weight):
    return a + (b - a) * weight


def _curve(image, knots):
    """EXPOSURE's monotone piecewise-linear curve: sum_i clip(x - i/8, 0, 1/8) t_i * 8 / sum t.

    ``knots`` is (*, C, 8, 1, 1) with C = 1 (same curve for all channels) or 3 (one per channel).
    """
    total = torch.zeros_like(image)
    for i in range(CURVE_STEPS):
        total = total + (image - i / CURVE_STEPS).clamp(0, 1.0 / CURVE_STEPS) * knots[..., i, :, :]
    return total * (CURVE_STEPS / (knots.sum(dim=-3) + 1e-30))


def curve_at(knots, x):
    """The curve of ``knots`` (8 numbers) at x in [0, 1], in plain Python (for labels)."""
    total = sum(min(max(x - i / CURVE_STEPS, 0.0), 1.0 / CURVE_STEPS) * t for i, t in enumerate(knots))
    return total * CURVE_STEPS / (sum(knots) + 1e-30)


def _percent_moves(knots, points):
    return ", ".join("%d%%→%d%%" % (round(100 * x), round(100 * curve_at(knots, x))) for x in points)


class Filter:
    """Owns the shared steps: value count, range checks, raw<->value maps and a readable label.

    A concrete filter sets ``name``, ``size``, ``low``, ``high``, ``neutral`` and writes ``apply``.
    """

    name = ""
    title = ""
    size = 1
    low = 0.0
    high = 1.0
    neutral = 0.0
    squash = "tanh"  # how raw parameters map into [low, high]: "tanh" (tanh_range) or "sigmoid"

    def neutral_values(self):
        return [self.neutral] * self.size

    def from_raw(self, raw):
        if self.squash == "sigmoid":
            return torch.sigmoid(raw) * (self.high - self.low) + self.low
        return tanh_range(self.low, self.high, raw)

    def to_raw(self, values):
        values = torch.as_tensor(values, dtype=torch.float32)
        if self.squash == "sigmoid":
            unit = ((values - self.low) / (self.high - self.low)).clamp(1e-6, 1 - 1e-6)
            return torch.log(unit / (1 - unit))
        return _atanh_range(self.low, self.high, values)

    def check(self, values):
        values = [float(v) for v in values]
        if len(values) != self.size:
            raise ValueError("filter '%s' takes %d value%s, got %d" % (self.name, self.size, "s" * (self.size > 1), len(values)))
        for v in values:
            if not (self.low - 1e-6 <= v <= self.high + 1e-6):
                raise ValueError("filter '%s': value %g is outside its range [%g, %g]" % (self.name, v, self.low, self.high))
        return values

    def label(self, values):
        return "%s %s" % (self.title, " ".join("%.2f" % v for v in values))

    def apply(self, image, values):
        """image (*, 3, H, W); values (*, size) -> image of the same shape."""
        raise NotImplementedError


class Exposure(Filter):
    name, title, low, high, neutral = "exposure", "Exposure", -3.5, 3.5, 0.0

    def apply(self, image, values):
        return image * torch.exp2(values[..., :, None, None])

    def label(self, values):
        return "Exposure %+.2f EV" % values[0]


class Gamma(Filter):
    name, title, low, high, neutral = "gamma", "Gamma", 1.0 / 3.0, 3.0, 1.0

    def from_raw(self, raw):
        return torch.exp(tanh_range(-math.log(3.0), math.log(3.0), raw))

    def to_raw(self, values):
        return _atanh_range(-math.log(3.0), math.log(3.0), torch.log(torch.as_tensor(values, dtype=torch.float32)))

    def apply(self, image, values):
        return image.clamp_min(0.001) ** values[..., :, None, None]

    def label(self, values):
        return "Gamma %.2f" % values[0]


class WhiteBalance(Filter):
    """Per-channel gains (R, G, B), renormalised so that luminance is kept (EXPOSURE keeps R at 1 while
    optimising; here any triple is accepted and renormalised the same way)."""

    name, title, size, low, high, neutral = "white_balance", "White balance", 3, math.exp(-0.5), math.exp(0.5), 1.0

    def from_raw(self, raw):
        return torch.exp(tanh_range(-0.5, 0.5, raw))

    def to_raw(self, values):
        return _atanh_range(-0.5, 0.5, torch.log(torch.as_tensor(values, dtype=torch.float32)))

    def apply(self, image, values):
        gains = values / (1e-5 + 0.27 * values[..., 0:1] + 0.67 * values[..., 1:2] + 0.06 * values[..., 2:3])
        return image * gains[..., :, None, None]

    def label(self, values):
        return "White balance R%.2f G%.2f B%.2f" % tuple(values)


class Saturation(Filter):
    """HSV saturation boost s' = s + (1 - s)(0.5 - |0.5 - v|) 0.8, mixed with the input by the weight.

    With hue and value fixed, each channel is v - (v - c) s'/s, so no HSV round trip is needed."""

    name, title, low, high, neutral, squash = "saturation", "Saturation", 0.0, 1.0, 0.0, "sigmoid"

    def apply(self, image, values):
        clipped = image.clamp(max=1.0)
        value = clipped.amax(dim=-3, keepdim=True)
        chroma = value - clipped.amin(dim=-3, keepdim=True)
        saturation = chroma / value.clamp_min(1e-6)
        boosted = saturation + (1 - saturation) * (0.5 - (0.5 - value).abs()) * 0.8
        scale = boosted / saturation.clamp_min(1e-6)
        full_color = torch.where(saturation > 1e-6, value - (value - clipped) * scale, clipped)
        return _lerp(image, full_color, values[..., :, None, None])

    def label(self, values):
        return "Saturation +%.0f%%" % (values[0] * 100)


class ToneCurve(Filter):
    name, title, size, low, high, neutral = "tone", "Tone curve", CURVE_STEPS, 0.5, 2.0, 1.0

    def apply(self, image, values):
        return _curve(image, values[..., None, :, None, None])

    def label(self, values):   # where shadows, midtones and highlights go: "Tone curve 25%→29%, ..."
        return "Tone curve %s" % _percent_moves(list(values), (0.25, 0.5, 0.75))


class Contrast(Filter):
    name, title, low, high, neutral = "contrast", "Contrast", -1.0, 1.0, 0.0

    def apply(self, image, values):
        lum = luminance(image).clamp(0.0, 1.0)
        contrast_lum = -torch.cos(math.pi * lum) * 0.5 + 0.5
        return _lerp(image, image / (lum + 1e-6) * contrast_lum, values[..., :, None, None])

    def label(self, values):
        return "Contrast %+.2f" % values[0]


class BlackAndWhite(Filter):
    name, title, low, high, neutral, squash = "bw", "Black & white", 0.0, 1.0, 0.0, "sigmoid"

    def apply(self, image, values):
        return _lerp(image, luminance(image).expand_as(image), values[..., :, None, None])

    def label(self, values):
        return "Black & white %.0f%%" % (values[0] * 100)


class ColorCurves(Filter):
    """One 8-step curve per channel (values: 8 for R, then 8 for G, then 8 for B)."""

    name, title, size, low, high, neutral = "color", "Colour curves", 3 * CURVE_STEPS, 0.9, 1.1, 1.0

    def apply(self, image, values):
        knots = values.reshape(*values.shape[:-1], 3, CURVE_STEPS)[..., None, None]
        return _curve(image, knots)

    def label(self, values):   # where each channel's midtone goes: "Colour curves R 50%→52%, G ..., B ..."
        values = list(values)
        return "Colour curves %s" % ", ".join(
            "%s %s" % (channel, _percent_moves(values[k * CURVE_STEPS:(k + 1) * CURVE_STEPS], (0.5,)))
            for k, channel in enumerate("RGB"))


FILTERS = {f.name: f for f in (Exposure(), Gamma(), WhiteBalance(), Saturation(), ToneCurve(),
                               Contrast(), BlackAndWhite(), ColorCurves())}
ORDER = list(FILTERS)  # PIEA's order of the stack


MAX_STACK = 64  # filters in one stack: PIEA's stacks have 8; a longer one only holds the worker


def parse_stack(stack):
    """Validate a filter stack given as {"filters": [{"name":..., "values": [...]}, ...]} (or its list),
    at most MAX_STACK filters long.

    Returns a list of (Filter, values) with values as Python floats. Raises ValueError with a sentence.
    """
    items = stack.get("filters", None) if isinstance(stack, dict) else stack
    if not isinstance(items, list):
        raise ValueError('a filter stack is {"filters": [{"name": ..., "values": [...]}, ...]}')
    if len(items) > MAX_STACK:
        raise ValueError("the filter stack has %d filters; at most %d are allowed" % (len(items), MAX_STACK))
    parsed = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in FILTERS:
            raise ValueError("unknown filter %r; known filters: %s" % (name, ", ".join(ORDER)))
        values = item.get("values")
        if values is None:
            values = FILTERS[name].neutral_values()
        parsed.append((FILTERS[name], FILTERS[name].check(values)))
    return parsed


def stack_to_json(stack):
    return {"filters": [{"name": f.name, "values": [round(float(v), 6) for v in values], "label": f.label(values)}
                        for f, values in stack]}


def apply_stack(image, stack):
    """Apply a parsed stack to a (*, 3, H, W) tensor, in order. Between filters a cancelled job stops
    (``jobs.checkpoint``): a long stack on a big band takes seconds."""
    for filt, values in stack:
        checkpoint()
        values = torch.as_tensor(values, dtype=image.dtype, device=image.device)
        image = filt.apply(image, values)
    return image


def apply_stack_tiled(image, stack, mix=None, rows=32, on_progress=None):
    """Apply a stack to a big planar (3, H, W) float32 tensor in place, a band of rows at a time.

    Pointwise filters make bands independent; small bands keep every intermediate in the cache. The bands
    run through ``mixing.banded`` on the band pool, each on one torch thread: both cores work, and the result
    does not depend on how torch's own threads split an operation (a first parallel region in a process gave
    1-ulp differences, so the same request could come back 1 level different in 8 bits). Bands of 32 rows:
    two in flight stay in the cache (24 MP, PIEA's 8-filter stack: 1.45 s against 1.54 s for 64-row bands
    split by torch, and 2.33 s for 64-row bands on the pool).
    ``mix`` (imaging.mixing.Mix) limits the effect by strength and selection: 0 keeps the original.
    ``on_progress(fraction)`` is called after every band, in order: it is also where a cancelled job stops.
    """
    return mixing.banded(image, lambda band, start, stop: apply_stack(band, stack), mix, rows, out=image,
                         on_progress=on_progress)


class FilterStack:
    """A filter stack as a value: the parameters ``filters`` replays and ``progressive`` finds.

    ``steps`` is a list of (Filter, values) in the order they apply; ``parse`` checks names, counts and
    ranges of the JSON form {"filters": [{"name": ..., "values": [...]}, ...]} and ``to_json`` gives it back
    with a readable label per filter ("Exposure +0.42 EV")."""

    def __init__(self, steps):
        self.steps = list(steps)

    @classmethod
    def parse(cls, stack):
        return cls(parse_stack(stack))

    def __len__(self):
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def to_json(self):
        return stack_to_json(self.steps)

    def apply(self, image, mix=None, on_progress=None):
        """In place on a planar (3, H, W) image of any size, blended by ``mix``."""
        return apply_stack_tiled(image, self.steps, mix=mix, on_progress=on_progress)
