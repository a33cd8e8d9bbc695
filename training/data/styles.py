"""Style programs: deterministic "photographer with masks" retouches that make the ground truth of each style.

The papers' data (Yan et al. 2016 local styles; Zhu & Yu 2018 global "actions") cannot be had here
(ARCHITECTURE.md §5), so each style is re-created from its published description as a short program of
shared operations (curves, Lab chroma and hue, contrast, EXPOSURE's saturation and white balance from
``backend.imaging.filters``) blended through the soft semantic cues of ``cues.py``:

- ``foreground-pop-out`` (Yan et al.): contrast and saturation up on the salient foreground objects,
  saturation (and a little contrast) down on the background.
- ``local-xpro`` (Yan et al.): a cross-processing look with one profile per semantic category: sky,
  vegetation, people (faces + skin) and everything else, each a brightness/contrast/hue/saturation/curves
  set; profiles are blended by the soft masks, "other" takes what the categories leave.
- ``watercolor`` (Yan et al.): foreground pop-out, then a brush effect: every SLIC superpixel takes its
  mean colour (Yan et al. emulated the brush with a superpixel segmentation; ``backend.imaging.brush``,
  the same strokes sa-adjust paints at full resolution).
- ``cold`` (Zhu & Yu, "tends to make a photo look vintage"): global faded, desaturated, cyan-blue action.
- ``spring`` (Zhu & Yu, "gives viewers the feeling of vitality"): global brighter, more saturated,
  fresh yellow-green action.

Every program maps sRGB (1, 3, H, W) float in [0, 1] plus cue masks {name: (H, W) in [0, 1]} to an
image of the same shape in [0, 1]. There is no randomness anywhere: the same photo gives the same target.

    >>> import torch
    >>> photo = torch.rand(1, 3, 32, 32)
    >>> out = apply_style("cold", photo, {})
    >>> out.shape, bool((out - apply_style("cold", photo, {})).abs().max() == 0)
    (torch.Size([1, 3, 32, 32]), True)
"""

import contextlib

import numpy as np
import torch

from backend import styles as style_registry
from backend.imaging import brush
from backend.imaging.color import lab_to_rgb, rgb_to_lab
from backend.imaging.filters import FILTERS

# --------------------------------------------------------------------------------------- shared ops


def curves(image, points, channel=None):
    """A photographer's curve through control points [(x, y), ...] in [0, 1] (piecewise linear, clamped).

    ``channel`` None applies it to R, G and B alike; 0, 1 or 2 to that channel only.
    """
    xs = torch.tensor([p[0] for p in points], dtype=image.dtype, device=image.device)
    ys = torch.tensor([p[1] for p in points], dtype=image.dtype, device=image.device)

    def curve(values):
        values = values.clamp(0.0, 1.0)
        index = torch.searchsorted(xs, values.contiguous(), right=True).clamp(1, len(points) - 1)
        x0, x1, y0, y1 = xs[index - 1], xs[index], ys[index - 1], ys[index]
        return y0 + (values - x0) * (y1 - y0) / (x1 - x0).clamp_min(1e-8)

    if channel is None:
        return curve(image)
    out = image.clone()
    out[:, channel] = curve(image[:, channel])
    return out


def lab_adjust(image, lightness_gain=1.0, lightness_offset=0.0, pivot=50.0, chroma=1.0, hue_degrees=0.0):
    """Contrast (gain around ``pivot``), brightness (offset) of L; chroma scale and hue rotation of (a, b)."""
    lab = rgb_to_lab(image.clamp(0.0, 1.0))
    lightness, a, b = lab.unbind(1)
    lightness = (lightness - pivot) * lightness_gain + pivot + lightness_offset
    angle = torch.tensor(np.deg2rad(hue_degrees), dtype=image.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = chroma * (a * cos - b * sin), chroma * (a * sin + b * cos)
    lab = torch.stack((lightness.clamp(0.0, 100.0), a, b), dim=1)
    return lab_to_rgb(lab).clamp(0.0, 1.0)


def exposure_filter(image, name, *values):
    """One filter of the EXPOSURE/PIEA bank (``backend.imaging.filters``) with explicit values."""
    filt = FILTERS[name]
    return filt.apply(image, torch.tensor(filt.check(values), dtype=image.dtype)).clamp(0.0, 1.0)


def blend(base, other, mask):
    """base where mask is 0, other where it is 1; mask (H, W) or (1, 1, H, W)."""
    mask = torch.as_tensor(mask, dtype=base.dtype)
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    return base + (other - base) * mask


def _cue(cues, name, image):
    mask = cues.get(name)
    if mask is None:
        return torch.zeros(image.shape[-2:], dtype=image.dtype)
    return torch.as_tensor(np.asarray(mask), dtype=image.dtype)


# --------------------------------------------------------------------------------------- the styles


def foreground_pop_out(image, cues):
    foreground = _cue(cues, "foreground", image)
    popped = lab_adjust(image, lightness_gain=1.3, lightness_offset=2.0, chroma=1.45)
    popped = exposure_filter(popped, "contrast", 0.25)
    muted = lab_adjust(image, lightness_gain=0.85, lightness_offset=-4.0, chroma=0.3)
    return blend(muted, popped, foreground).clamp(0.0, 1.0)


XPRO_PROFILES = {
    # category: (lab_adjust arguments, extra curve steps) -- the cross-processed look, tuned per category
    "sky": dict(lab=dict(lightness_gain=1.2, lightness_offset=-8.0, chroma=1.7, hue_degrees=-12.0),
                curves=[(2, [(0.0, 0.05), (0.5, 0.58), (1.0, 1.0)])]),
    "vegetation": dict(lab=dict(lightness_gain=1.25, lightness_offset=4.0, chroma=1.5, hue_degrees=-18.0),
                       curves=[(0, [(0.0, 0.0), (0.5, 0.55), (1.0, 1.0)])]),
    "people": dict(lab=dict(lightness_gain=0.95, lightness_offset=7.0, chroma=1.15, hue_degrees=6.0),
                   curves=[(0, [(0.0, 0.02), (0.5, 0.56), (1.0, 1.0)]), (2, [(0.0, 0.0), (0.5, 0.45), (1.0, 0.92)])]),
    "other": dict(lab=dict(lightness_gain=1.12, chroma=1.25),
                  curves=[(0, [(0.0, 0.0), (0.25, 0.16), (0.75, 0.88), (1.0, 1.0)]),
                          (1, [(0.0, 0.0), (0.25, 0.2), (0.75, 0.84), (1.0, 1.0)]),
                          (2, [(0.0, 0.14), (1.0, 0.82)])]),
}


def _xpro_profile(image, profile):
    out = image
    for channel, points in profile["curves"]:
        out = curves(out, points, channel)
    return lab_adjust(out, **profile["lab"])


def xpro_weights(cues, image):
    """Soft partition of the frame into sky / vegetation / people / other (sums to 1 at every pixel)."""
    people = torch.maximum(_cue(cues, "faces", image), _cue(cues, "skin", image))
    # water takes the sky's profile (a retoucher treats a lake like the sky it reflects), never vegetation's
    sky = torch.maximum(_cue(cues, "sky", image), _cue(cues, "water", image))
    weights = {"sky": sky, "vegetation": _cue(cues, "vegetation", image), "people": people}
    total = sum(weights.values())
    scale = torch.where(total > 1.0, 1.0 / total.clamp_min(1e-6), torch.ones_like(total))
    weights = {name: w * scale for name, w in weights.items()}
    weights["other"] = (1.0 - sum(weights.values())).clamp(0.0, 1.0)
    return weights


def local_xpro(image, cues):
    weights = xpro_weights(cues, image)
    out = torch.zeros_like(image)
    for name, weight in weights.items():
        out = out + _xpro_profile(image, XPRO_PROFILES[name]) * weight
    return out.clamp(0.0, 1.0)


def watercolor(image, cues):
    popped = foreground_pop_out(image, cues)
    return brush.flatten(popped, brush.superpixel_labels(popped)).clamp(0.0, 1.0)


def cold(image, cues=None):
    out = curves(image, [(0.0, 0.08), (0.5, 0.51), (1.0, 0.92)])  # faded: blacks lifted, whites dulled
    out = curves(out, [(0.0, 0.0), (0.5, 0.44), (1.0, 0.92)], 0)  # less red
    out = curves(out, [(0.0, 0.02), (0.5, 0.5), (1.0, 0.97)], 1)
    out = curves(out, [(0.0, 0.1), (0.5, 0.57), (1.0, 1.0)], 2)  # blue into shadows and mid-tones
    return lab_adjust(out, lightness_gain=0.96, chroma=0.7)


def spring(image, cues=None):
    out = exposure_filter(image, "exposure", 0.15)
    out = curves(out, [(0.0, 0.0), (0.25, 0.29), (0.75, 0.8), (1.0, 1.0)])  # open the mid-tones
    out = curves(out, [(0.0, 0.0), (0.5, 0.55), (1.0, 1.0)], 1)  # fresh green
    out = curves(out, [(0.0, 0.0), (0.5, 0.45), (1.0, 0.92)], 2)  # warm, yellow highlights
    out = exposure_filter(out, "saturation", 0.3)
    return lab_adjust(out, lightness_gain=1.03, chroma=1.15)


# bump when a program's recipe changes (the cues have their own CUE_VERSION): pairs.json records both, and
# ensure_pairs renders the pairs afresh when either differs. 2: water takes the sky's profile in local-xpro.
PROGRAM_VERSION = 2

# the programs of the styles of the one registry (backend/styles.py: names, summaries, local or global)
PROGRAMS = {"foreground-pop-out": foreground_pop_out, "local-xpro": local_xpro, "watercolor": watercolor,
            "cold": cold, "spring": spring}
STYLES = style_registry.STYLES


def get_style(name):
    return style_registry.get(name)


@contextlib.contextmanager
def _one_thread():
    """Elementwise work on one 512 px image gains nothing from torch's thread pool, and on a busy 2-core
    machine the pool's synchronisation made it ~50x slower (measured: 2.7 s vs 0.03 s for local-xpro)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def apply_style(name, image, cues):
    """Run style ``name`` on sRGB (1, 3, H, W) in [0, 1] with cue masks {name: (H, W)}."""
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError("expected a (1, 3, H, W) image, got shape %s" % (tuple(image.shape),))
    program = PROGRAMS[get_style(name).name]
    with torch.no_grad(), _one_thread():
        return program(image.float(), cues or {}).clamp(0.0, 1.0)


def lab_distance(image, target):
    """Mean per-pixel CIELab L2 distance (the papers' metric); both sRGB (1, 3, H, W) in [0, 1]."""
    with torch.no_grad(), _one_thread():
        return float(torch.linalg.vector_norm(rgb_to_lab(image) - rgb_to_lab(target), dim=1).mean())
