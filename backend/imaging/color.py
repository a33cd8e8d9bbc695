"""Colour spaces: sRGB (perceptual) <-> linear RGB <-> CIE XYZ (D65) <-> CIELab.

Tensors are (*, 3, H, W), float. sRGB and linear RGB in [0, 1] (values outside are extended
smoothly, never clipped here); Lab with L in [0, 100], a and b roughly in [-128, 127].

    >>> import torch
    >>> rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten().round()
    tensor([100., 0., 0.])
"""

import torch

# sRGB primaries, D65 white (IEC 61966-2-1)
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ.double()).float()
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883])
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0

# EXPOSURE/PIEA luminance weights (not Rec.709: the papers' filters are defined with these)
LUMA_WEIGHTS = (0.27, 0.67, 0.06)


def _check(image):
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError("expected a (*, 3, H, W) tensor, got shape %s" % (tuple(image.shape),))


def _mix(matrix, image):
    """Apply a 3x3 matrix to the channel axis of a (*, 3, H, W) tensor."""
    matrix = matrix.to(image.dtype).to(image.device)
    return torch.einsum("ij,...jhw->...ihw", matrix, image)


def srgb_to_linear(image):
    """Decode sRGB values to linear light; negative values mirror (keeps the curve monotone)."""
    magnitude = image.abs()
    curve = torch.where(magnitude <= 0.04045, magnitude / 12.92, ((magnitude + 0.055) / 1.055) ** 2.4)
    return torch.copysign(curve, image)


def linear_to_srgb(image):
    """Encode linear light to sRGB values; negative values mirror."""
    magnitude = image.abs()
    curve = torch.where(magnitude <= 0.0031308, magnitude * 12.92,
                        1.055 * magnitude.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055)
    return torch.copysign(curve, image)


def linear_to_xyz(image):
    _check(image)
    return _mix(_RGB_TO_XYZ, image)


def xyz_to_linear(image):
    _check(image)
    return _mix(_XYZ_TO_RGB, image)


def xyz_to_lab(xyz):
    white = _WHITE_D65.to(xyz.dtype).to(xyz.device).view(3, 1, 1)
    ratio = xyz / white
    f = torch.where(ratio > _EPSILON, ratio.clamp_min(_EPSILON) ** (1.0 / 3.0), (_KAPPA * ratio + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_xyz(lab):
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    f = torch.stack((fx, fy, fz), dim=-3)
    ratio = torch.where(f ** 3 > _EPSILON, f ** 3, (116.0 * f - 16.0) / _KAPPA)
    white = _WHITE_D65.to(lab.dtype).to(lab.device).view(3, 1, 1)
    return ratio * white


def rgb_to_lab(image):
    """sRGB-encoded (perceptual) RGB -> CIELab."""
    _check(image)
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(image)))


def lab_to_rgb(lab):
    """CIELab -> sRGB-encoded RGB (not clipped: out-of-gamut colours leave [0, 1])."""
    _check(lab)
    return linear_to_srgb(xyz_to_linear(lab_to_xyz(lab)))


def luminance(image):
    """The papers' luminance 0.27 R + 0.67 G + 0.06 B, shape (*, 1, H, W)."""
    _check(image)
    r, g, b = image.unbind(-3)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(-3)


def quadratic_lab_basis(lab):
    """Zhu & Yu's 10-term quadratic basis of (L, a, b): L^2, a^2, b^2, La, Lb, ab, L, a, b, 1.

    Input (*, 3, H, W) Lab; output (*, 10, H, W). A 3x10 matrix per pixel maps it to output Lab.
    """
    L, a, b = lab.unbind(-3)
    return torch.stack((L * L, a * a, b * b, L * a, L * b, a * b, L, a, b, torch.ones_like(L)), dim=-3)
