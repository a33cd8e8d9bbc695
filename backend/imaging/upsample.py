"""Predict at low resolution, apply at full resolution.

Networks see a copy of at most ~512 px (``downscale``). What they predict is a colour mapping, not
pixels: per-pixel affine colour transforms (3x4 = 12 coefficients) at low resolution, either
predicted directly or fitted from the network's low-res input->output pair (``fit_local_affine``,
the guided-filter fit of He & Sun). ``apply_affine_full`` slices the coefficient maps bilinearly at
full resolution, a band of rows at a time, and applies them to the original pixels: edges come from
the full-resolution image itself, so a 24-megapixel result is sharp and keeps 16-bit gradations.

Tensors: low-res maps (1, C, h, w); full-resolution images planar (3, H, W) float32 (imaging.pixels.Layer.rgb).
"""

import torch
import torch.nn.functional as F

NETWORK_SIDE = 512


def network_size(height, width, max_side=NETWORK_SIDE):
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(image, max_side=NETWORK_SIDE):
    """(3, H, W) -> (1, 3, h, w) with the long side <= max_side, area-averaged (no aliasing)."""
    height, width = image.shape[1:]
    size = network_size(height, width, max_side)
    nchw = image.unsqueeze(0)
    if size == (height, width):
        return nchw.contiguous()
    # two steps: an integer-factor box filter (cheap on 24 MP), then antialiased bilinear to the exact size
    factor = max(1, min(height // size[0], width // size[1]) // 2)
    if factor > 1:
        nchw = F.avg_pool2d(nchw, factor, ceil_mode=True)
    return F.interpolate(nchw, size=size, mode="bilinear", antialias=True, align_corners=False)


def box_mean(x, radius):
    """Mean over a (2r+1)^2 window with the window shrunk at the borders (counts divided out)."""
    if radius <= 0:
        return x
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def _solve_affine(cov_ii, cov_ip, mean_i, mean_p, eps, prior):
    """Ridge solve of (cov_ii + eps I) A^T = cov_ip + eps prior^T over leading dims; returns (..., 3, 4)."""
    eye = torch.eye(3, dtype=cov_ii.dtype, device=cov_ii.device)
    a = torch.linalg.solve(cov_ii + eps * eye, cov_ip + eps * prior.transpose(-1, -2)).transpose(-1, -2)
    b = mean_p - (a @ mean_i.unsqueeze(-1)).squeeze(-1)
    return torch.cat([a, b.unsqueeze(-1)], dim=-1)


def fit_global_affine(low_in, low_out, eps=1e-6):
    """The single 3x4 affine colour map that best maps low_in to low_out (least squares), (3, 4)."""
    x = low_in[0].reshape(3, -1)
    y = low_out[0].reshape(3, -1)
    mean_i, mean_p = x.mean(1), y.mean(1)
    xc, yc = x - mean_i[:, None], y - mean_p[:, None]
    cov_ii = xc @ xc.T / x.shape[1]
    cov_ip = xc @ yc.T / x.shape[1]
    return _solve_affine(cov_ii, cov_ip, mean_i, mean_p, eps, torch.eye(3, dtype=x.dtype))


def fit_local_affine(low_in, low_out, radius=2, eps=1e-3):
    """Per-pixel 3x4 affine maps A with low_out ~= A [r g b 1]^T in each window (multichannel guided filter).

    low_in, low_out: (1, 3, h, w). Returns (1, 12, h, w): rows of A for output R, G, B, each (a_r, a_g, a_b, b).
    Where a window is too flat to tell the colour map apart (little variance), the fit leans on the
    image-wide affine map rather than on zero, as the plain guided filter would: texture finer than
    the network's resolution keeps its contrast, and a global mapping is recovered exactly.
    """
    _, _, h, w = low_in.shape
    prior = fit_global_affine(low_in, low_out)[:, :3]
    mean_i = box_mean(low_in, radius)
    mean_p = box_mean(low_out, radius)
    prod_ii = (low_in[:, :, None] * low_in[:, None, :]).reshape(1, 9, h, w)
    prod_ip = (low_in[:, :, None] * low_out[:, None, :]).reshape(1, 9, h, w)
    cov_ii = box_mean(prod_ii, radius).reshape(3, 3, h, w) - mean_i[0, :, None] * mean_i[0, None, :]
    cov_ip = box_mean(prod_ip, radius).reshape(3, 3, h, w) - mean_i[0, :, None] * mean_p[0, None, :]
    coeffs = _solve_affine(cov_ii.permute(2, 3, 0, 1), cov_ip.permute(2, 3, 0, 1),
                           mean_i[0].permute(1, 2, 0), mean_p[0].permute(1, 2, 0), eps, prior)  # (h, w, 3, 4)
    coeffs = coeffs.reshape(h, w, 12).permute(2, 0, 1).unsqueeze(0)
    return box_mean(coeffs, radius)  # average the overlapping windows, as the guided filter does


def _source_index(out_size, in_size, device):
    """Bilinear source positions (half-pixel centres, like align_corners=False) as (lo, hi, weight)."""
    pos = (torch.arange(out_size, dtype=torch.float32, device=device) + 0.5) * (in_size / out_size) - 0.5
    pos = pos.clamp(0, in_size - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo, hi, (pos - lo).unsqueeze(0)


def _bilinear_band(maps, y_index, x_index, start, stop):
    """Rows [start, stop) of ``maps`` (C, h, w) bilinearly resized, laid out (band, C, width).

    y_index, x_index: ``_source_index`` of the full height and width (computed once per image).

    Shaped for speed in plain torch: the few low-res rows the band needs are widened first, at low
    height (whole columns picked by ``index_select`` on a 2-D view, then lerped), and all the band's
    rows then come out of one small matrix product with the (band, n) matrix of vertical bilinear
    weights (two per row). Nothing at full resolution goes through advanced indexing, which is slow,
    and the (band, C, width) result is written once, in the layout the per-pixel maths reads.
    """
    channels, _, w = maps.shape
    (y_lo, y_hi, wy), (x_lo, x_hi, wx) = y_index, x_index
    first, last = int(y_lo[start]), int(y_hi[stop - 1]) + 1
    low = maps[:, first:last].transpose(0, 1).reshape(-1, w)  # (n * C, w)
    wide = torch.lerp(low.index_select(1, x_lo), low.index_select(1, x_hi), wx)  # (n * C, width)
    band = torch.arange(stop - start, device=maps.device)
    rows = torch.zeros(stop - start, last - first, dtype=wide.dtype, device=maps.device)
    rows[band, y_lo[start:stop] - first] = 1 - wy[0, start:stop]
    rows[band, y_hi[start:stop] - first] += wy[0, start:stop]  # lo == hi only where the weight is 0
    return (rows @ wide.view(last - first, -1)).view(stop - start, channels, -1)


def bilinear_rows(maps, height, width, start, stop):
    """Rows [start, stop) of ``maps`` (1, C, h, w) bilinearly resized to (height, width): (C, stop-start, width)."""
    _, _, h, w = maps.shape
    index = _source_index(height, h, maps.device), _source_index(width, w, maps.device)
    return _bilinear_band(maps[0], *index, start, stop).transpose(0, 1)


def upsample_bilinear(maps, height, width):
    """Whole-image bilinear resize of low-res maps (for masks and small outputs)."""
    return F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)


def identity_affine(size):
    """Coefficient maps (1, 12, h, w) of the identity colour map (an 'unchanged' preset)."""
    coeffs = torch.zeros(1, 12, *size)
    for k in range(3):
        coeffs[0, 4 * k + k] = 1.0
    return coeffs


def mix_coefficients(coeffs, weights):
    """Mix K presets' coefficient maps (1, 12K, h, w) by per-pixel weights (K, h, w) -> (1, 12, h, w).

    Affine maps are linear in their coefficients, so mixing the maps equals mixing the mapped colours."""
    k = weights.shape[0]
    return (coeffs.reshape(k, 12, *coeffs.shape[-2:]) * weights.unsqueeze(1)).sum(0, keepdim=True)


def apply_affine_full(image, coeffs, rows=32, out=None, weights_low=None, weights_full=None, on_progress=None):
    """Apply low-res per-pixel affine colour maps to a full-resolution planar (3, H, W) image.

    coeffs (1, 12K, h, w): K presets. With K > 1 they are mixed per pixel by weights given at low
    resolution (K, h, w: sliced like the coefficients), at full resolution (K, H, W: e.g. a user's
    selection, kept sharp), or both multiplied. Bands of ``rows`` keep the temporaries small. Per band,
    the low-res weights are sliced with the coefficients (one resize), and the three output channels
    are computed together by three broadcast ``addcmul``s over (band, 3, W) views, written into ``out``.
    """
    height, width = image.shape[1:]
    k = coeffs.shape[1] // 12
    maps = coeffs[0] if k == 1 or weights_low is None else torch.cat([coeffs[0], weights_low])
    index = _source_index(height, maps.shape[1], maps.device), _source_index(width, maps.shape[2], maps.device)
    out = torch.empty_like(image) if out is None else out
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        c = _bilinear_band(maps, *index, start, stop)  # (band, 12K [+ K], W)
        if k > 1:
            weights = c[:, 12 * k:] if weights_low is not None else 1.0
            if weights_full is not None:
                weights = weights * weights_full[:, start:stop].transpose(0, 1)
            c = (c[:, :12 * k].reshape(-1, k, 12, width) * weights.unsqueeze(2)).sum(1)
        c = c.view(-1, 3, 4, width)  # (band, output channel, [a_r a_g a_b b], W)
        r, g, b = image[:, start:stop, None]  # (band, 1, W) each, broadcast over the output channels
        band_out = out[:, start:stop].transpose(0, 1)
        torch.addcmul(c[:, :, 3], c[:, :, 0], r, out=band_out).addcmul_(c[:, :, 1], g).addcmul_(c[:, :, 2], b)
        if on_progress and ((start // rows) % 32 == 31 or stop >= height):
            on_progress(stop / height)
    return out
