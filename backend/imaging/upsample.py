"""Predict at low resolution, apply at full resolution.

Networks see a copy of at most ~512 px (``downscale``). What they predict is a colour mapping, not
pixels: per-pixel affine colour transforms (3x4 = 12 coefficients) at low resolution, either
predicted directly or fitted from the network's low-res input->output pair (``fit_local_affine``,
the guided-filter fit of He & Sun). ``apply_affine_full`` slices the coefficient maps bilinearly at
full resolution, a band of rows at a time, and applies them to the original pixels: edges come from
the full-resolution image itself, so a 24-megapixel result is sharp and keeps 16-bit gradations.

Tensors: low-res maps (1, C, h, w); full-resolution images planar (3, H, W) float32 (imaging.pixels.Layer.rgb).
"""

import threading

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import threads

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
        nchw = box_downsample(nchw, factor)
    return F.interpolate(nchw, size=size, mode="bilinear", antialias=True, align_corners=False)


def _plain_cpu(x):
    """True for a CPU float32/float64 tensor that OpenCV can read in place (no autograd, no copies)."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not x.requires_grad
            and x.is_contiguous())


def box_downsample(nchw, factor):
    """``F.avg_pool2d(nchw, factor, ceil_mode=True)`` (a partial block at the end is the mean of what it has):
    the whole blocks through OpenCV's area resize (an exact box mean for an integer factor, and several times
    faster than torch's pooling on a 24-MP layer), the partial ones through torch."""
    if not _plain_cpu(nchw):
        return F.avg_pool2d(nchw, factor, ceil_mode=True)
    n, channels, height, width = nchw.shape
    rows, columns = height // factor, width // factor
    out_h, out_w = -(-height // factor), -(-width // factor)
    out = torch.empty(n, channels, out_h, out_w, dtype=nchw.dtype)
    if rows and columns:
        source, target = nchw.numpy(), out.numpy()
        for i in range(n):
            for c in range(channels):
                target[i, c, :rows, :columns] = cv2.resize(source[i, c, :rows * factor, :columns * factor],
                                                           (columns, rows), interpolation=cv2.INTER_AREA)
    if out_h > rows:
        out[:, :, rows:] = F.avg_pool2d(nchw[:, :, rows * factor:], factor, ceil_mode=True)
    if out_w > columns and rows:
        out[:, :, :rows, columns:] = F.avg_pool2d(nchw[:, :, :rows * factor, columns * factor:], factor, ceil_mode=True)
    return out


def box_mean(x, radius):
    """Mean over a (2r+1)^2 window with the window shrunk at the borders (counts divided out).

    Wide windows (the adjustment map's guided filter) go as a row pass then a column pass of running sums:
    a window clipped by the border is still a product of two intervals, so the result is the same, in O(1)
    instead of O(r^2) a pixel. The small windows of the colour-map fit keep the single pass they were
    tuned with."""
    if radius <= 0:
        return x
    if radius <= 2 and _plain_cpu(x) and x.dim() == 4:
        return _box_mean_cv2(x, radius)
    if radius <= 2:
        return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    return _box_mean_1d(_box_mean_1d(x, radius, -1), radius, -2)


def _box_mean_cv2(x, radius):
    """``box_mean`` of a small window, per plane through OpenCV's running-sum box filter (zeros outside, then
    the in-image count divided out: the same means as ``avg_pool2d(count_include_pad=False)``, ~20x faster).
    Inside, the count is the window's area (OpenCV's own normalisation); only the border strips are rescaled."""
    planes = x.numpy().reshape(-1, *x.shape[-2:])
    return _box_means([(plane, None) for plane in planes], radius).view(x.shape)


def _box_means(factors, radius):
    """``_box_mean_cv2`` of the planes a or of the products a * b for ``factors`` [(a, b or None)] (numpy (h, w)
    float planes) -> (N, h, w): each product made and filtered in one job, the jobs side by side
    (``threads.run``; OpenCV filters a plane this small on one thread)."""
    height, width = factors[0][0].shape
    size = 2 * radius + 1
    out = torch.empty(len(factors), height, width, dtype=torch.from_numpy(factors[0][0][:1, :1]).dtype)
    target = out.numpy()
    count = [np.minimum(np.arange(n) + radius, n - 1) - np.maximum(np.arange(n) - radius, 0) + 1 for n in (height, width)]
    rows = (size / count[0]).astype(target.dtype)[:, None]      # area / count along each axis
    columns = (size / count[1]).astype(target.dtype)[None, :]
    small = min(height, width) < size  # no interior: every pixel rescaled
    scratch = threading.local()

    def one(index):
        first, second = factors[index]
        result = target[index]
        if second is not None:
            if getattr(scratch, "plane", None) is None:
                scratch.plane = np.empty_like(first)
            first = np.multiply(first, second, out=scratch.plane)
        cv2.boxFilter(first, -1, (size, size), dst=result, normalize=True, borderType=cv2.BORDER_CONSTANT)
        if small:
            result *= rows * columns
            return
        for strip in (slice(0, radius), slice(height - radius, height)):
            result[strip] *= rows[strip]
        for strip in (slice(0, radius), slice(width - radius, width)):
            result[:, strip] *= columns[:, strip]

    threads.run(one, len(factors))
    return out


def _box_mean_1d(x, radius, dim):
    """Means over [i - r, i + r] along ``dim`` (clipped at the ends) from running sums: O(1) a sample."""
    n = x.shape[dim]
    sums = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), torch.cumsum(x, dim)], dim)
    index = torch.arange(n, device=x.device)
    high, low = (index + radius + 1).clamp(max=n), (index - radius).clamp(min=0)
    shape = [1] * x.dim()
    shape[dim] = n
    return (sums.index_select(dim, high) - sums.index_select(dim, low)) / (high - low).to(x.dtype).view(shape)


def _solve_affine(cov_ii, cov_ip, mean_i, mean_p, eps, prior):
    """Ridge solve of (cov_ii + eps I) A^T = cov_ip + eps prior^T over leading dims.

    cov_ii (..., 3, 3); cov_ip (..., 3, C); mean_i (..., 3); mean_p (..., C); prior (C, 3).
    Returns (..., C, 4): for each output channel (a_r, a_g, a_b, b)."""
    eye = torch.eye(3, dtype=cov_ii.dtype, device=cov_ii.device)
    a = torch.linalg.solve(cov_ii + eps * eye, cov_ip + eps * prior.transpose(-1, -2)).transpose(-1, -2)
    b = mean_p - (a @ mean_i.unsqueeze(-1)).squeeze(-1)
    return torch.cat([a, b.unsqueeze(-1)], dim=-1)


def fit_global_affine(low_in, low_out, eps=1e-6):
    """The single affine map of the colour (3 inputs) that best gives low_out (C channels), (C, 4)."""
    x = low_in[0].reshape(3, -1)
    y = low_out[0].reshape(low_out.shape[1], -1)
    mean_i, mean_p = x.mean(1), y.mean(1)
    xc, yc = x - mean_i[:, None], y - mean_p[:, None]
    cov_ii = xc @ xc.T / x.shape[1]
    cov_ip = xc @ yc.T / x.shape[1]
    prior = torch.eye(3, dtype=x.dtype) if y.shape[0] == 3 else torch.zeros(y.shape[0], 3, dtype=x.dtype)
    return _solve_affine(cov_ii, cov_ip, mean_i, mean_p, eps, prior)


def fit_local_affine(low_in, low_out, radius=2, eps=1e-3, prior="global"):
    """Per-pixel affine maps of the colour, low_out ~= A [r g b 1]^T in each window (multichannel guided
    filter, He et al.).

    low_in (1, 3, h, w); low_out (1, C, h, w). Returns (1, 4C, h, w): for each output channel
    (a_r, a_g, a_b, b). Where a window is too flat to tell the map apart (little variance), the fit leans
    on ``prior``: "global", the image-wide affine map (for colour maps: texture finer than the network's
    resolution keeps its contrast, and a global mapping is recovered exactly), or None, zero slope (the
    plain guided filter: the window's mean, for adjustment maps).
    """
    _, channels, h, w = low_out.shape
    if prior == "global":
        prior = fit_global_affine(low_in, low_out)[:, :3]
    else:
        prior = torch.zeros(channels, 3, dtype=low_in.dtype, device=low_in.device)
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]  # the covariance is symmetric: 6 of its 9 entries
    if radius <= 2 and _plain_cpu(low_in) and _plain_cpu(low_out) and low_in.dtype == low_out.dtype:
        # every mean and mean of a product in one set of side-by-side jobs, no product stacked first
        guide, target = low_in[0].numpy(), low_out[0].numpy()
        means = _box_means([(plane, None) for plane in guide] + [(plane, None) for plane in target]
                           + [(guide[i], guide[j]) for i, j in pairs]
                           + [(guide[i], target[c]) for i in range(3) for c in range(channels)], radius)
        mean_i, mean_p = means[None, :3], means[None, 3:3 + channels]
        box_ii, box_ip = means[3 + channels:9 + channels], means[9 + channels:]
    else:
        mean_i = box_mean(low_in, radius)
        mean_p = box_mean(low_out, radius)
        box_ii = box_mean(torch.stack([low_in[0, i] * low_in[0, j] for i, j in pairs]).unsqueeze(0), radius)[0]
        box_ip = box_mean((low_in[:, :, None] * low_out[:, None, :]).reshape(1, 3 * channels, h, w), radius)[0]
    coeffs = _solve_affine_planes(box_ii, box_ip.reshape(3, channels, h, w), mean_i[0], mean_p[0], eps, prior)
    return box_mean(coeffs.reshape(1, 4 * channels, h, w), radius)  # average the overlapping windows, as the guided filter does


def _solve_affine_planes(box_ii, box_ip, mean_i, mean_p, eps, prior, rows=128):
    """``_solve_affine`` for every pixel of planar maps, from the windows' box means: the covariances are made
    and the ridged 3x3 system (symmetric positive definite) is solved by an LDLᵀ factorisation, elementwise
    over ``rows`` rows of the planes at a time (they stay in cache; bands side by side on ``threads.run``'s
    threads) instead of a batched LU of 3x3 systems. In the planes' own precision: LDLᵀ has no determinant
    to cancel, so float32 gives the outputs the float64 cofactor inverse gave to 4e-7 (the cofactors in
    float32 were 1.2e-3 off on near-grey windows), at 1.7x the speed (docs/learn-style.md).

    box_ii (6, h, w): means of the guide's products (0,0) (0,1) (0,2) (1,1) (1,2) (2,2); box_ip (3, C, h, w)
    means of guide x target; mean_i (3, h, w); mean_p (C, h, w); prior (C, 3).
    Returns (C, 4, h, w): for each output channel (a_r, a_g, a_b, b)."""
    channels, height = box_ip.shape[1], box_ip.shape[2]
    out = torch.empty(channels, 4, *box_ip.shape[2:], dtype=box_ip.dtype, device=box_ip.device)
    ridge = (eps * prior.t()).to(box_ip.dtype).reshape(3, -1, 1, 1)

    def solve(index):
        band = slice(index * rows, min(height, (index + 1) * rows))
        i0, i1, i2 = mean_i[:, band]
        products = box_ii[:, band]
        d0 = (products[0] - i0 * i0).add_(eps)              # the covariance, ridged on the diagonal
        m01, m02 = products[1] - i0 * i1, products[2] - i0 * i2
        l10, l20 = m01 / d0, m02 / d0                      # = L D Lᵀ, L unit lower triangular
        d1 = (products[3] - i1 * i1).add_(eps).sub_(l10 * m01)
        e12 = (products[4] - i1 * i2).sub_(l20 * m01)
        l21 = e12 / d1
        d2 = (products[5] - i2 * i2).add_(eps).sub_(l20 * m02).sub_(l21 * e12)
        target = mean_p[:, band]
        rhs = (box_ip[:, :, band] - mean_i[:, None, band] * target[None]).add_(ridge)  # (3, C, n, w)
        y1 = rhs[1].sub_(l10 * rhs[0])                     # forward, then back substitution, in place
        x2 = rhs[2].sub_(l20 * rhs[0]).sub_(l21 * y1).div_(d2)
        x1 = y1.div_(d1).sub_(l21 * x2)
        x0 = rhs[0].div_(d0).sub_(l10 * x1).sub_(l20 * x2)
        coefficients = out[:, :, band]
        for j, slope in enumerate((x0, x1, x2)):
            coefficients[:, j] = slope
        torch.sub(target, x0 * i0, out=coefficients[:, 3]).sub_(x1 * i1).sub_(x2 * i2)

    threads.run(solve, -(-height // rows), parallel=box_ip.device.type == "cpu")
    return out


def source_index(out_size, in_size, device):
    """Bilinear source positions (half-pixel centres, like align_corners=False) as (lo, hi, weight)."""
    pos = (torch.arange(out_size, dtype=torch.float32, device=device) + 0.5) * (in_size / out_size) - 0.5
    pos = pos.clamp(0, in_size - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo, hi, (pos - lo).unsqueeze(0)


def bilinear_band(maps, y_index, x_index, start, stop):
    """Rows [start, stop) of ``maps`` (C, h, w) bilinearly resized, laid out (band, C, width).

    y_index, x_index: ``source_index`` of the full height and width (computed once per image).

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


def grid_index(height, width, maps):
    """``source_index`` of both axes, for slicing ``maps`` (..., h, w) to (height, width) band by band."""
    return source_index(height, maps.shape[-2], maps.device), source_index(width, maps.shape[-1], maps.device)


def bilinear_rows(maps, height, width, start, stop):
    """Rows [start, stop) of ``maps`` (1, C, h, w) bilinearly resized to (height, width): (C, stop-start, width)."""
    return bilinear_band(maps[0], *grid_index(height, width, maps), start, stop).transpose(0, 1)


def upsample_bilinear(maps, height, width):
    """Whole-image bilinear resize of low-res maps (for masks and small outputs)."""
    return F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)


def sample_maps(maps, positions):
    """Bilinear samples of (N, C, h, w) maps at normalised positions (N, P, 2) in [-1, 1] -> (N, P, C)."""
    return F.grid_sample(maps, positions.unsqueeze(1), mode="bilinear", padding_mode="border",
                         align_corners=False)[:, :, 0].transpose(1, 2)


def pixel_grid(height, width, device="cpu"):
    """Normalised positions (1, H*W, 2) of every pixel centre, row-major (x, y as grid_sample wants)."""
    ys = (torch.arange(height, device=device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(1, -1, 2)
