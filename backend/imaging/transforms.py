"""Per-pixel colour-transform maps: predicted at low resolution, applied at full resolution (HDRNet's seam).

A ``ColourTransformMaps`` holds K presets' coefficient maps at the network's resolution, in one of two
bases, and optionally the adjustment map that mixes them:

- ``affine-rgb`` (sa-adjust): per output sRGB channel, (a_r, a_g, a_b, b) of the input sRGB colour;
  4 coefficients x 3 channels = 12 a preset (fitted by ``upsample.fit_local_affine``).
- ``quadratic-lab`` (fcn-stylize, Zhu & Yu 2018): per output Lab channel, 10 coefficients of the quadratic
  basis [L², a², b², La, Lb, ab, L, a, b, 1] of the input Lab / 100, giving output Lab / 100; 30 a preset.

``apply_colour_transforms`` slices the maps bilinearly at full resolution a band of rows at a time, mixes
the presets by the adjustment map carried edge-aware to full resolution (``mixing.guided_map``) or by the
user's map, applies the result to the original pixels and blends by strength and selection (``mixing.Mix``).
Nothing full-size is ever allocated besides the output, and cancellation is checked between bands.

    >>> maps = ColourTransformMaps(identity_coefficients((4, 4)))
    >>> image = torch.rand(3, 16, 16)
    >>> bool(torch.allclose(apply_colour_transforms(image, maps), image))
    True
"""

import threading
from dataclasses import dataclass

import cv2
import torch

from . import color, mixing, threads, upsample

TERMS = {"affine-rgb": 4, "quadratic-lab": 10}
LAB_SCALE = 100.0
# Layers longer than this mix their presets by the edge-aware map on a copy of this size (a 24-MP layer:
# one mixing pixel per 4x4), then slice the one mixed map to full resolution: transitions 4 px wide at
# 24 MP instead of the 512 px map's ~12 px steps, at the cost of one preset instead of K + the map.
MIX_SIDE = 1536


@dataclass
class ColourTransformMaps:
    """coefficients (1, K * 3 * terms, h, w); adjustment_map (K, h, w) probabilities over the presets
    (None: K = 1, or a user's map will be given); guide (1, 3, h, w) the low-resolution view the map was
    predicted on, which ``edge_radius`` > 0 snaps the map to (0: plain bilinear slicing of the map; None:
    ``mixing.EDGE_RADIUS``)."""

    coefficients: torch.Tensor
    basis: str = "affine-rgb"
    adjustment_map: torch.Tensor = None
    guide: torch.Tensor = None
    edge_radius: int = None
    _guided: tuple = None  # (radius, coefficients) of the map's guided filter, fitted once at low resolution

    def __post_init__(self):
        if self.basis not in TERMS:
            raise ValueError("unknown colour-transform basis %r; known: %s" % (self.basis, ", ".join(TERMS)))
        per_preset = 3 * TERMS[self.basis]
        if self.coefficients.shape[1] % per_preset:
            raise ValueError("%d coefficient channels are not a whole number of %s presets (%d each)"
                             % (self.coefficients.shape[1], self.basis, per_preset))

    @property
    def radius(self):
        return mixing.EDGE_RADIUS if self.edge_radius is None else self.edge_radius

    def guided_map(self):
        """The map's guided-filter coefficients (1, 4K, h, w): low-resolution work, so ``predict`` calls it."""
        if self._guided is None or self._guided[0] != self.radius:
            self._guided = (self.radius, mixing.guided_map(self.guide, self.adjustment_map, self.radius))
        return self._guided[1]

    @property
    def k(self):
        return self.coefficients.shape[1] // (3 * TERMS[self.basis])

    def full_resolution_map(self, image):
        """The adjustment map (K, H, W) as it is applied to ``image`` (3, H, W), for returning it."""
        if self.radius > 0:
            return mixing.evaluate_map(self.guided_map(), image)
        height, width = image.shape[1:]
        return upsample.upsample_bilinear(self.adjustment_map.unsqueeze(0), height, width)[0]


def identity_coefficients(size, basis="affine-rgb"):
    """Coefficient maps (1, 3 * terms, h, w) of the identity colour transform."""
    terms = TERMS[basis]
    coefficients = torch.zeros(1, 3 * terms, *size)
    first_linear = 0 if basis == "affine-rgb" else 6  # the L, a, b terms of the quadratic basis
    for channel in range(3):
        coefficients[0, terms * channel + first_linear + channel] = 1.0
    return coefficients


def _apply_basis(coefficients, band, basis, out=None):
    """coefficients (N, 3, terms, W) at the band's colours (3, N, W) -> transformed band (N, 3, W)."""
    if basis == "affine-rgb":
        r, g, b = band[:, :, None]  # (N, 1, W) each, broadcast over the output channels
        return torch.addcmul(coefficients[:, :, 3], coefficients[:, :, 0], r, out=out).addcmul_(
            coefficients[:, :, 1], g).addcmul_(coefficients[:, :, 2], b)
    lab = color.rgb_to_lab(band.unsqueeze(0))[0] / LAB_SCALE            # (3, N, W)
    terms = color.quadratic_lab_basis(lab).transpose(0, 1)             # (N, 10, W)
    out_lab = (coefficients * terms.unsqueeze(1)).sum(2) * LAB_SCALE    # (N, 3, W)
    result = color.lab_to_rgb(out_lab.transpose(0, 1).unsqueeze(0))[0].transpose(0, 1)
    return result if out is None else out.copy_(result)


def _mixed_band(low, index, start, stop, k, per_preset, colours, user_map=None):
    """Rows [start, stop) of the presets' coefficient maps ``low`` (K * per_preset [+ 4K guided], h, w),
    sliced to the grid of ``index`` and mixed per pixel by the user's map or by the guided adjustment
    map evaluated on ``colours`` (3, N, W) -> (N, per_preset, W)."""
    sliced = upsample.bilinear_band(low, *index, start, stop)  # (N, channels, W)
    coefficients = sliced[:, :k * per_preset]
    if k == 1:
        return coefficients
    width = sliced.shape[-1]
    if user_map is not None:
        weights = user_map[:, start:stop].transpose(0, 1)
    else:
        weights = mixing.map_from_coefficients(sliced[:, k * per_preset:].view(-1, k, 4, width), colours)
    presets = coefficients.view(-1, k, per_preset, width)
    mixed = presets[:, 0] * weights[:, :1]  # K passes of one madd: no (N, K, C, W) temporary
    for preset in range(1, k):
        mixed.addcmul_(presets[:, preset], weights[:, preset:preset + 1])
    return mixed


def _premixed(low, k, per_preset, image, rows=16):
    """The presets mixed by the guided map on a box-averaged copy of ``image`` with the long side at most
    MIX_SIDE: (per_preset, Hm, Wm) coefficient maps, then sliced to full resolution like a single preset."""
    factor = -(-max(image.shape[1:]) // MIX_SIDE)
    medium = torch.nn.functional.avg_pool2d(image.unsqueeze(0), factor, ceil_mode=True)[0]
    height, width = medium.shape[1:]
    index = upsample.grid_index(height, width, low)
    out = torch.empty(height, per_preset, width)
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        out[start:stop] = _mixed_band(low, index, start, stop, k, per_preset, medium[:, start:stop])
    return out.transpose(0, 1)


def apply_colour_transforms(image, maps, mix=None, rows=32, out=None, on_progress=None, share_rows=1):
    """Apply ``maps`` (ColourTransformMaps) to a full-resolution planar sRGB image (3, H, W) -> (3, H, W).

    With K > 1 presets, the weights come from ``mix.user_map`` (K, H, W) when given, else from the
    predicted adjustment map (edge-aware, or bilinear with ``edge_radius`` 0). ``mix`` (mixing.Mix) then
    blends the transformed pixels with the original by strength and selection. ``on_progress(fraction)``
    is called every 32 bands; it may raise to cancel. ``share_rows`` 2: runs of two rows share one slice of
    one affine preset's maps (``_apply_one_affine``; for smooth maps at a large upscale, ``carry_pointwise``).
    """
    mix = mix or mixing.Mix()
    height, width = image.shape[1:]
    k, terms = maps.k, TERMS[maps.basis]
    per_preset = 3 * terms
    amount = mix.amount()
    parts, weights_from = [maps.coefficients[0]], "none"
    if k > 1 and mix.user_map is not None:
        weights_from = "user"
    elif k > 1 and maps.radius > 0:
        parts.append(maps.guided_map()[0])
        weights_from = "guided"
        if max(height, width) > MIX_SIDE:  # a big layer: mix at MIX_SIDE, then slice one preset's worth
            parts, k = [_premixed(torch.cat(parts), k, per_preset, image)], 1
    elif k > 1:  # a bilinear map mixes the presets at low resolution once (linear maps: the same result)
        weights = maps.adjustment_map.to(maps.coefficients.dtype)
        coefficients = maps.coefficients
        if isinstance(amount, float):  # strength alone folds in as an identity preset
            weights = torch.cat([weights * amount, torch.full_like(weights[:1], 1 - amount)])
            coefficients = torch.cat([coefficients, identity_coefficients(weights.shape[-2:], maps.basis)], dim=1)
            amount = None
        parts = [(coefficients[0].view(-1, per_preset, *weights.shape[-2:]) * weights.unsqueeze(1)).sum(0)]
        k = 1
    low = torch.cat(parts) if len(parts) > 1 else parts[0]
    out = torch.empty_like(image) if out is None else out
    if (k == 1 and maps.basis == "affine-rgb" and image.dtype == torch.float32 and image.device.type == "cpu"
            and low.device.type == "cpu"):
        return _apply_one_affine(low, image, amount, out, on_progress, share=share_rows)
    index = upsample.grid_index(height, width, low)
    rows = max(8, rows * per_preset // low.shape[0])  # many channels: fewer rows, the band stays in cache
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        band = image[:, start:stop]
        user_map = mix.user_map if weights_from == "user" else None
        coefficients = _mixed_band(low, index, start, stop, k, per_preset, band, user_map)
        coefficients = coefficients.view(-1, 3, terms, width)
        target = out[:, start:stop]
        if amount is None:  # written straight into the output, in the (N, 3, W) layout the maths reads
            _apply_basis(coefficients, band, maps.basis, out=target.transpose(0, 1))
        else:
            result = _apply_basis(coefficients, band, maps.basis)
            share = amount if isinstance(amount, float) else amount[:, start:stop]
            torch.lerp(band, result.transpose(0, 1), share, out=target)
        if on_progress and ((start // rows) % 32 == 31 or stop >= height):
            on_progress(stop / height)
    return out


def _apply_one_affine(low, image, amount, out, on_progress, share=1, chunk=24):
    """One affine-rgb preset's maps ``low`` (12, h, w) applied to ``image`` (3, H, W) into ``out``: the fast
    path of ``apply_colour_transforms`` (a learnt look or an enhancer's curves carried by
    ``carry_pointwise``, sa-adjust with one preset or its presets mixed at low resolution).

    Bilinear slicing is separable, so the maps are widened to the full width only at their own rows
    (OpenCV's resize, ``chunk`` low rows at a time, the chunks side by side on ``threads.run``'s threads:
    exact, since those rows keep their places). A run of
    ``share`` full-size rows then gets one slice of the maps, lerped between the two low rows around the
    run's centre, applied to all its rows: nothing with 12 values a pixel is made. ``share`` 1 is exactly
    the bilinear slicing; 2 (``carry_pointwise``: smooth maps, 8 full rows a map row at 24 MP) reads the
    maps half a row from each row's own place (1/16 of a map row's change at 24 MP) for 6 instead of 12
    slicing values a pixel. Strength is folded into the maps (affine too), a selection blends in the same
    group. ``on_progress`` after each chunk."""
    height, width = image.shape[1:]
    h, w = low.shape[-2:]
    low = low.to(torch.float32)
    if isinstance(amount, float):  # strength: s * (A x + b) + (1 - s) x is again an affine map
        low = low * amount + identity_coefficients((h, w))[0] * (1.0 - amount)
        amount = None
    planes = low.contiguous().numpy()
    runs, whole = -(-height // share), height // share   # (the last run may be shorter)
    y_lo, y_hi, wy = upsample.source_index(runs, h, "cpu")  # at the runs' centres: (2k + 1) h / H - 1/2 for 2
    starts, counts = torch.unique_consecutive(y_lo, return_counts=True)
    groups, first = [], 0  # (low row, first run, end run): the runs between two low rows
    for lo, count in zip(starts.tolist(), counts.tolist()):
        groups.append((lo, first, first + count))
        first += count
    weights = wy[0].view(1, -1, 1)
    chunks = [groups[i:i + chunk] for i in range(0, len(groups), chunk)]
    spans = [(part[0][0], min(h, part[-1][0] + 2)) for part in chunks]  # the low rows each chunk reads
    local = threading.local()  # each thread's buffers, made once (a fresh 14 MB block is faulted in every time)

    def carry(index):
        part = chunks[index]
        if not hasattr(local, "wide"):
            local.wide = torch.empty(12, max(bottom - top for top, bottom in spans), width)
            local.slices = torch.empty(12, max(end - first for _, first, end in groups), width)
        top, bottom = spans[index]
        wide = local.wide[:, :bottom - top]
        target = wide.numpy()
        for plane in range(12):
            cv2.resize(planes[plane, top:bottom], (width, bottom - top), dst=target[plane], interpolation=cv2.INTER_LINEAR)
        for lo, first, end in part:
            hi = int(y_hi[first])
            sliced = wide[:, lo - top:lo - top + 1]
            if hi != lo:  # (runs past the last low row's centre have weight 0: the row itself, for all)
                sliced = torch.lerp(sliced, wide[:, hi - top:hi - top + 1], weights[:, first:end],
                                    out=local.slices[:, :end - first])
            maps = sliced.view(3, 4, -1, 1, width)                            # a slice a run, or one for all
            for a, b in ((first, min(end, whole)), (max(first, whole), end)):  # whole runs, then a short last one
                if b <= a:
                    continue
                size = share if a < whole else height - whole * share
                rows = slice(a * share, a * share + (b - a) * size)
                coefficients = maps if maps.shape[2] == 1 else maps[:, :, a - first:b - first]
                band = image[:, rows].view(3, b - a, size, width)
                result = out[:, rows].view(3, b - a, size, width)
                mixed = result if amount is None else torch.empty_like(result)
                torch.addcmul(coefficients[:, 3], coefficients[:, 0], band[0], out=mixed)
                mixed.addcmul_(coefficients[:, 1], band[1]).addcmul_(coefficients[:, 2], band[2])
                if amount is not None:
                    torch.lerp(band, mixed, amount[:, rows].view(-1, b - a, size, width), out=result)

    threads.run(carry, len(chunks), on_progress and (lambda index: on_progress(min(height, chunks[index][-1][2] * share) / height)))
    return out


# A pointwise colour function (a learnt look, an enhancer's curves) costs ~0.5 s a megapixel evaluated exactly
# on two cores (Lab conversions, lookups). Above EXACT_PIXELS it is evaluated exactly on a box-averaged copy
# with the long side at most FIT_SIDE (``fit_copy``) and carried to full resolution as per-pixel affine colour
# maps fitted there (HDRNet's seam, ``upsample.fit_local_affine``): a window of the copy holds few colours, and
# the function is smooth in colour. 750 px and 3 x 3 windows (a 24-MP layer: 8 x 8 blocks) replaced 1024 px
# (box and antialiased bilinear) and 5 x 5 windows: on 4x-upscaled photos as far from the exact look as before
# (a sharper copy and smaller windows make up for the coarser grid; docs/learn-style.md), at half the pixels.
EXACT_PIXELS = 4_000_000
FIT_SIDE = 750
FIT_RADIUS = 1
FIT_EPS = 1e-4


def fit_copy(image):
    """The copy (1, 3, h, w) ``carry_pointwise`` fits its maps on: box means over the smallest whole factor
    that brings the long side to at most FIT_SIDE (a 24-MP layer: 6 x 6 blocks, 1000 x 667), one pass of
    OpenCV's area resize, no second resampling step (``upsample.downscale`` adds an antialiased bilinear one
    to reach an exact size, which the fit does not need: the maps are sliced by the copy's own size)."""
    factor = -(-max(image.shape[1:]) // FIT_SIDE)
    return upsample.box_downsample(image.unsqueeze(0), factor) if factor > 1 else image.unsqueeze(0).contiguous()


def carry_pointwise(image, function, mix=None, on_progress=None, exact_pixels=EXACT_PIXELS):
    """``function`` ((3, h, w) sRGB -> (3, h, w)) on a full-resolution image (3, H, W), blended by ``mix``:
    exactly up to ``exact_pixels``, else through local affine maps fitted on a FIT_SIDE copy (see above)."""
    height, width = image.shape[1:]
    if height * width <= exact_pixels:
        result = function(image)
        if on_progress:
            on_progress(1.0)
        return (mix or mixing.Mix()).blend(image, result)
    low = fit_copy(image)
    coefficients = upsample.fit_local_affine(low, function(low[0]).unsqueeze(0), FIT_RADIUS, FIT_EPS)
    # the fitted maps are smooth (box means of box means) and 8 full rows a map row at 24 MP: rows in twos
    share = 2 if height >= 4 * coefficients.shape[-2] else 1
    return apply_colour_transforms(image, ColourTransformMaps(coefficients), mix, on_progress=on_progress,
                                   share_rows=share)


def apply_global_affine(image, coefficients, mix=None, rows=256, on_progress=None):
    """One affine colour map (3, 4) (``upsample.fit_global_affine``) on a full-resolution image (3, H, W),
    clamped to [0, 1] and blended by ``mix``, a band of rows at a time (the same for every pixel: no slicing)."""
    matrix, offset = coefficients[:, :3].to(image), coefficients[:, 3].to(image).view(3, 1)
    return mixing.banded(image, lambda band, start, stop: torch.addmm(offset, matrix, band.reshape(3, -1))
                         .clamp_(0, 1).view_as(band), mix, rows, on_progress=on_progress)
