"""A learnt look: a resolution-free colour transform with position as an input, applied at full resolution.

What a user's retouching does to a photo is, for most looks, a function of the pixel's colour (tone curves,
hue shifts, split toning: a 3-D LUT) plus a low-frequency function of where the pixel is (a vignette, a
graduated filter, a sky tint that depends on colour *and* height). A ``Look`` holds both, as a change of
the pixel's CIELab colour (L, a, b / 100, the space the error is measured in):

    out(c, x, y) = lab(c) + Q(lab(c)) @ quadratic + lut(c) + sum_k s_k(x, y) * spatial_k(c)

- ``quadratic`` (10, 3): Zhu & Yu's global quadratic transform of Lab, Q = [L², a², b², La, Lb, ab, L, a, b, 1]
  (the paper's "global style"): what the look does to colours the pairs never showed follows it;
- ``lut`` (3, n, n, n): the rest of the colour change at the nodes of an n^3 grid over the input sRGB cube, laid out
  [channel, b, g, r] (``grid_sample``'s (D, H, W) for grid coordinates (r, g, b)), read trilinearly;
- ``spatial`` (K, 3, ...): per spatial term s_k (``spatial_terms``: hats along y and x and r⁴, functions of
  the position x, y in [-1, 1] across the width and height, so the look is the same at any resolution), a
  coarse LUT of the colour change that term scales, indexed by ``spatial_coordinates``: a bilateral grid over
  (position, colour) in separable form. Format 3 (learnt since 2026-12-03): Y_NODES = 17 hats along y, LUTs
  over (lightness, chroma, hue) with LCH_NODES nodes; formats 2 and 1: 5 y-hats, 7^3 LUTs over compressed Lab
  and over sRGB. A vignette is a change proportional to the colour that falls with r⁴; a sky tint is
  "blue" (a region of the coarse LUT) times "high up" (a profile along y).

Everything is linear in the parameters, so ``training/fcn_stylize`` fits them by regularised least squares
(the height profile of format 3, a product, by alternating ones).
``apply_look`` works a band of rows at a time (the position terms only need the band's first row), and
blends by strength and selection with ``mixing.Mix`` like every model.

    >>> look = Look.identity()
    >>> image = torch.rand(3, 8, 12)
    >>> bool(torch.allclose(apply_look(image, look), image))
    True
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import color, mixing, transforms
from .transforms import EXACT_PIXELS, FIT_EPS, FIT_RADIUS, FIT_SIDE  # noqa: F401  (the bench reads them here)

HAT_NODES = 5          # hats along x (and along y in format-1 and -2 files)
Y_NODES = 17           # hats along y since format 3: the learnt height profile's nodes (docs/learn-style.md)


def spatial_terms(y_nodes=HAT_NODES):
    """The position terms' names: ``y_nodes`` hats along y, HAT_NODES along x, r⁴."""
    return tuple("y≈%g" % (i / (y_nodes - 1)) for i in range(y_nodes)) + \
        tuple("x≈%g" % (i / (HAT_NODES - 1)) for i in range(HAT_NODES)) + ("r⁴",)


SPATIAL_TERMS = spatial_terms()        # format 1 and 2
SPATIAL_LUT_SIZE = 7
LCH_NODES = (7, 4, 12)  # format 3: nodes along lightness, compressed chroma, hue (periodic: 12 hues 30° apart)
LAB_SCALE = 100.0
SPATIAL_SPACES = ("lab", "rgb", "lch")  # what the position terms' LUTs are indexed by (``spatial_coordinates``)
CHROMA_KNEE = 40.0


def spatial_coordinates(lab, rgb, space="lab"):
    """The colour coordinates (3, ...) in [0, 1] the position terms' LUTs are indexed by. "lab" (styles
    learnt since format 2): lightness and the two opponent axes compressed around neutral (a / (|a| + 40)),
    from ``lab`` (Lab / 100). Unlike the sRGB cube ("rgb", format 1: ``rgb`` itself), whose dark corner
    squeezes every hue into one cell, they keep hues apart at every lightness, so "blue and high up" need
    not also catch the dark teal of a leaf (docs/learn-style.md). "lch" (format 3): lightness, chroma
    compressed the same way (C / (C + 40)) and the hue angle as a fraction of a turn, so hues 30° apart sit in
    different cells at every lightness and chroma (teal ~200° and sky blue ~260° do not share one); the
    LUT's hue axis holds one node more than there are hues, the first one repeated, so an ordinary
    trilinear lookup wraps around."""
    if space == "rgb":
        return rgb
    L, a, b = lab[0], lab[1] * LAB_SCALE, lab[2] * LAB_SCALE
    if space == "lch":
        chroma = torch.hypot(a, b)
        hue = torch.atan2(b, a).div_(2.0 * torch.pi).remainder_(1.0)
        return torch.stack((L.clamp(0.0, 1.0), chroma / (chroma + CHROMA_KNEE), hue))
    return torch.stack((L.clamp(0.0, 1.0), 0.5 + 0.5 * a / (a.abs() + CHROMA_KNEE),
                        0.5 + 0.5 * b / (b.abs() + CHROMA_KNEE)))


def _hats(t, count=HAT_NODES):
    """Piecewise-linear "hat" weights of t in [-1, 1] over ``count`` evenly spaced nodes: (count, ...)."""
    position = (t + 1.0) * 0.5 * (count - 1)
    nodes = torch.arange(count, dtype=t.dtype).view(-1, *([1] * t.dim()))
    return (1.0 - (position.unsqueeze(0) - nodes).abs()).clamp_min(0.0)


def spatial_basis(y, x, y_nodes=HAT_NODES):
    """Normalised positions y, x (broadcastable tensors in [-1, 1]) -> (K, ...) the terms ``spatial_terms``:
    hats along y (a graduated filter, a sky), hats along x, and r⁴ (a vignette's corners)."""
    y, x = torch.broadcast_tensors(y, x)
    r2 = (x * x + y * y) * 0.5  # 0 at the centre, 1 in the corners
    return torch.cat((_hats(y, y_nodes), _hats(x), (r2 * r2).unsqueeze(0)))


def positions(total, start=0, stop=None):
    """Centres of pixels ``start``..``stop`` (default: all) of ``total`` along one axis, normalised to [-1, 1]."""
    stop = total if stop is None else stop
    return (torch.arange(start, stop, dtype=torch.float32) + 0.5) * (2.0 / total) - 1.0


@dataclass
class Look:
    """``lut`` (3, n, n, n) float32 colour change at the grid nodes ([channel, b, g, r]); ``spatial``
    (K, 3, m2, m1, m0) the same per position term, over ``spatial_coordinates`` (c0, c1, c2) laid out like the
    sRGB LUT's (r, g, b): cubic for "rgb" and "lab", (hues + 1, chroma, lightness) nodes for "lch". K is
    ``y_nodes`` + HAT_NODES + 1 (``spatial_terms``): 5 y-hats in format 1 and 2, Y_NODES since format 3."""

    quadratic: torch.Tensor
    lut: torch.Tensor
    spatial: torch.Tensor
    spatial_space: str = "lab"

    def __post_init__(self):
        if self.spatial_space not in SPATIAL_SPACES:
            raise ValueError("a look's position terms are indexed by one of %s, not %r" % (SPATIAL_SPACES, self.spatial_space))
        n = self.lut.shape[-1]
        if self.lut.dim() != 4 or tuple(self.lut.shape) != (3, n, n, n) or n < 2:
            raise ValueError("a look's LUT must be (3, n, n, n) with n >= 2, got %s" % (tuple(self.lut.shape),))
        shape = tuple(self.spatial.shape)
        cubic = len(shape) == 5 and shape[2] == shape[3] == shape[4]
        if len(shape) != 5 or shape[1] != 3 or shape[0] - HAT_NODES - 1 < 2 or min(shape[2:]) < 2 or \
                (self.spatial_space != "lch" and not cubic):
            raise ValueError("a look's spatial part must be (K, 3, m, m, m) (K - %d hats along y, at least 2; "
                             "(K, 3, hues + 1, chroma, lightness) for the hue-indexed terms), got %s"
                             % (HAT_NODES + 1, shape))
        if tuple(self.quadratic.shape) != (10, 3):
            raise ValueError("a look's quadratic part must be (10, 3), got %s" % (tuple(self.quadratic.shape),))
        if not all(torch.isfinite(t).all() for t in (self.quadratic, self.lut, self.spatial)):
            raise ValueError("a look's parameters must be finite numbers")

    @classmethod
    def identity(cls, size=17, spatial_size=SPATIAL_LUT_SIZE, spatial_space="lab"):
        return cls(torch.zeros(10, 3), torch.zeros(3, size, size, size), torch.zeros(len(SPATIAL_TERMS), 3, *(spatial_size,) * 3),
                   spatial_space)

    @property
    def size(self):
        return self.lut.shape[-1]

    @property
    def y_nodes(self):
        return self.spatial.shape[0] - HAT_NODES - 1

    @property
    def has_spatial(self):
        return bool(self.spatial.abs().max() > 0)


def lut_atlas(luts):
    """``luts`` (B, C, n, n, n) ([b, g, r] nodes over [0, 1]^3) laid out for ``trilinear``: (B, 2C, n, (n - 1) n),
    the (b, b + 1) slice pairs side by side along r."""
    batch, channels, n_b, n_g, n_r = luts.shape
    pairs = torch.cat((luts[:, :, :-1], luts[:, :, 1:]), 1)             # (B, 2C, n_b - 1, n_g, n_r)
    return pairs.transpose(2, 3).reshape(batch, 2 * channels, n_g, (n_b - 1) * n_r)


def atlas_grid(colours, n):
    """Where ``trilinear`` samples an atlas of n^3 LUTs (``n`` an int), or of LUTs with (n_b, n_g, n_r) nodes
    (``n`` a tuple), for ``colours`` (B, 3, N, W): (grid (B, N, W, 2), fraction along b (B, 1, N, W));
    computed once for several atlases of the same size."""
    n_b, _, n_r = (n, n, n) if isinstance(n, int) else n
    r, g, b = colours.clamp(0.0, 1.0).unbind(1)
    depth = b * (n_b - 1)
    slot = depth.floor().clamp_(max=n_b - 2)
    fraction = (depth - slot).unsqueeze(1)
    across = slot.mul_(n_r).add_(r, alpha=n_r - 1).mul_(2.0 / ((n_b - 1) * n_r - 1)).sub_(1.0)
    return torch.stack((across, g * 2.0 - 1.0), -1), fraction


def trilinear(atlas, colours, where=None):
    """Trilinear lookup of the LUTs of ``atlas`` (``lut_atlas``) at ``colours`` (B, 3, N, W) (r, g, b; clamped
    to the cube) -> (B, C, N, W): what ``grid_sample`` gives in 3-D, computed as one 2-D bilinear lookup of
    both b-slices (torch's 2-D sampler is vectorised, its 3-D one is not: ~10x faster a channel), then a
    lerp along b. ``where``: ``atlas_grid`` of the colours, if already computed (its batch may be 1 while the
    atlas has one LUT per row, or the other way round)."""
    channels, n = atlas.shape[1] // 2, atlas.shape[2]
    grid, fraction = where or atlas_grid(colours, n)  # (cubic LUTs: ``where`` is given for the others)
    if grid.shape[0] != atlas.shape[0]:  # one LUT per row of one tile: the rows become the batch
        grid, fraction = grid.transpose(0, 1), fraction.transpose(0, 2)
    both = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return torch.lerp(both[:, :channels], both[:, channels:], fraction)


def lut_change(lut, rgb):
    """The LUT's colour change at colours ``rgb`` (3, N, W) -> (3, N, W), trilinear, clamped to the cube."""
    return trilinear(lut_atlas(lut.unsqueeze(0)), rgb.unsqueeze(0))[0]


def _runs(hats):
    """Runs of positions under the same nonzero hats: [(start, stop, [hat indices])] for hats (nodes, n)."""
    nodes = len(hats)
    key = ((hats > 0).to(torch.int64) << torch.arange(nodes).view(-1, 1)).sum(0)
    values, counts = torch.unique_consecutive(key, return_counts=True)
    runs, start = [], 0
    for value, count in zip(values.tolist(), counts.tolist()):
        runs.append((start, start + count, [j for j in range(nodes) if value >> j & 1]))
        start += count
    return runs


def spatial_change(spatial, colours, y, x):
    """sum_k s_k(y, x) spatial_k(colours) for a band: ``colours`` (3, N, W) the pixels' ``spatial_coordinates``,
    ``y`` (N, 1), ``x`` (1, W) -> (3, N, W).

    The terms are separable (hats of y per row, hats of x per column, r⁴ per pixel), and a LUT lookup is
    linear in the LUT, so the sum is folded before anything is sampled. The y-hats of each row are summed
    into one LUT per row (grid_sample's batch; one small matrix product for the band, whatever the number of
    y-hats), and the band is cut into tiles between the x-hats' nodes, where two x-hats are nonzero: the
    second one is added to the rows' LUTs, and over a tile the two sum to one, so the first one scales the
    difference of the two LUTs. Each pixel then reads 3 LUTs of 3 channels (its row's, the x difference,
    r⁴'s, the last two shared by the tile) instead of every term's."""
    y_nodes = len(spatial) - HAT_NODES - 1
    hats_y, hats_x = _hats(y[:, 0], y_nodes), _hats(x[0])                # (y_nodes, N), (5, W)
    r2 = (x * x + y * y) * 0.5                                           # 0 at the centre, 1 in the corners
    r4 = r2 * r2
    nodes = tuple(spatial.shape[2:])
    atlases = lut_atlas(spatial)                                          # (K, 6, m1, (m2 - 1) m0) per term
    per_row = (hats_y.t() @ atlases[:y_nodes].reshape(y_nodes, -1)).view(len(y), *atlases.shape[1:])
    out = torch.empty_like(colours)
    for left, right, columns in _runs(hats_x):
        last = y_nodes + columns[-1]
        tile = colours[:, :, left:right].unsqueeze(0)                    # (1, 3, N, w)
        where = atlas_grid(tile, nodes)
        rows_sampled = trilinear(per_row + atlases[last], tile, where)    # (N, 3, 1, w): row LUTs + last x-hat
        target = out[:, :, left:right]
        target.copy_(rows_sampled[:, :, 0].transpose(0, 1))
        shared = [y_nodes + HAT_NODES] + ([y_nodes + columns[0]] if len(columns) > 1 else [])
        luts = spatial[shared]
        if len(columns) > 1:  # over a tile the two x-hats sum to one: the first scales a difference
            luts[1] -= spatial[last]
        sampled = trilinear(lut_atlas(luts.reshape(1, -1, *nodes)), tile, where)[0]  # (3 L, N, w)
        target.addcmul_(sampled[:3], r4[:, left:right])
        if len(columns) > 1:
            target.addcmul_(sampled[3:], hats_x[columns[0], left:right])
    return out


def quadratic_change(lab, quadratic):
    """Q(lab) @ ``quadratic`` (10, 3) for ``lab`` (3, N, W) -> (3, N, W), factored per channel (Horner's way)
    instead of through the (10, N, W) basis: a third of the passes over the band, the same sums."""
    L, a, b = lab
    w = quadratic.tolist()
    out = torch.empty_like(lab)
    for c in range(3):
        (l2, a2, b2, la, lb, ab, l1, a1, b1, one) = (w[k][c] for k in range(10))
        part = (L * l2).add_(a, alpha=la).add_(b, alpha=lb).add_(l1).mul_(L)
        part.addcmul_(a, (a * a2).add_(b, alpha=ab).add_(a1))
        part.addcmul_(b, (b * b2).add_(b1)).add_(one)
        out[c] = part
    return out


def apply_look(image, look, mix=None, rows=128, out=None, on_progress=None):
    """``look`` on a full-resolution planar sRGB image (3, H, W) -> (3, H, W), blended by ``mix``
    (mixing.Mix: strength and selection). ``on_progress(fraction)`` is called after each band; it may raise
    to cancel."""
    height, width = image.shape[1:]
    quadratic, lut, spatial = (t.to(image.dtype) for t in (look.quadratic, look.lut, look.spatial))
    x = positions(width).view(1, -1)
    atlas = lut_atlas(lut.unsqueeze(0))

    def styled(band, start, stop):
        lab = color.rgb_to_lab(band.unsqueeze(0))[0] / LAB_SCALE
        change = quadratic_change(lab, quadratic).add_(trilinear(atlas, band.unsqueeze(0))[0])
        if look.has_spatial:
            change += spatial_change(spatial, spatial_coordinates(lab, band, look.spatial_space), positions(height, start, stop).view(-1, 1), x)
        return color.lab_to_rgb((lab + change).mul_(LAB_SCALE).unsqueeze(0))[0]

    return mixing.banded(image, styled, mix, rows, out, on_progress)


# Above transforms.EXACT_PIXELS a look is evaluated exactly on a FIT_SIDE copy and carried to full resolution by
# local affine colour maps fitted there (``transforms.carry_pointwise``, shared with EnhanceGAN's curves):
# a window of the copy holds few colours, and the look is smooth in colour, so the affine map is close
# (docs/learn-style.md has the measured gap).


def render(image, look, mix=None, on_progress=None, exact_pixels=EXACT_PIXELS):
    """``look`` on a full-resolution image (3, H, W): exactly up to ``exact_pixels`` (banded, blended by
    ``mix``), else through local affine maps fitted on a FIT_SIDE copy."""
    height, width = image.shape[1:]
    if height * width <= exact_pixels:
        return apply_look(image, look, mix, on_progress=on_progress)
    # the copy in one band a thread: its bands are small, and each one rebuilds the position terms' atlases
    return transforms.carry_pointwise(image, lambda rgb: apply_look(rgb, look, rows=-(-rgb.shape[1] // torch.get_num_threads())),
                                      mix, on_progress=on_progress, exact_pixels=0)
