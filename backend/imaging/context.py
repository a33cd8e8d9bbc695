"""Colour context: fixed maths that says where a pixel is and how its colour stands against the photo's.

A subject is told apart by a colour unlike its surroundings and the photo's average, nearer the centre
(Achanta et al. 2009's frequency-tuned saliency, Hou & Zhang 2007's spectral residual, a centre prior).
Backbones trained for classification or edges do not encode this at the pixel, and the style programs'
subject masks are made of it; fcn-stylize and sa-adjust both give it to their heads (no parameters).
"""

import torch
from torch.nn import functional as F


def box_average(maps, fraction):
    """(N, C, h, w) averaged over a box ``fraction`` of the map's longer side wide (mirrored borders)."""
    radius = max(1, int(round(fraction * max(maps.shape[-2:]) / 2)))
    radius_y, radius_x = min(radius, maps.shape[-2] - 1), min(radius, maps.shape[-1] - 1)
    padded = F.pad(maps, (radius_x, radius_x, radius_y, radius_y), mode="reflect")
    return F.avg_pool2d(padded, (2 * radius_y + 1, 2 * radius_x + 1), stride=1)


COLOUR_POOLS = (0.1, 0.3)   # the neighbourhood's Lab averaged over these fractions of the photo
COLOUR_CHANNELS = 3 + 3 * len(COLOUR_POOLS) + 6
SALIENCY_CHANNELS = 2
SUBJECT_CHANNELS = 3        # the saliency maps standardised over the photo (``subject_cue``)


def spectral_residual(grey, size=64):
    """Hou & Zhang 2007 on a (1, 1, h, w) grey copy: log amplitude spectrum minus its 3x3 average, back to
    space, squared, blurred; normalised to [0, 1] -> (1, 1, h, w)."""
    small = F.interpolate(grey, size=(size, size), mode="area")
    spectrum = torch.fft.fft2(small)
    amplitude = torch.log(spectrum.abs() + 1e-8)
    residual = amplitude - F.avg_pool2d(F.pad(amplitude, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    saliency = torch.fft.ifft2(torch.exp(torch.complex(residual, torch.angle(spectrum)))).abs() ** 2
    kernel = torch.exp(-torch.arange(-7, 8, dtype=grey.dtype) ** 2 / (2 * 2.5 ** 2))
    kernel = (kernel / kernel.sum()).to(grey.device)
    saliency = F.conv2d(F.pad(saliency, (7, 7, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    saliency = F.conv2d(F.pad(saliency, (0, 0, 7, 7), mode="reflect"), kernel.view(1, 1, -1, 1))
    saliency = F.interpolate(saliency, size=grey.shape[-2:], mode="bilinear", align_corners=False)
    low, high = saliency.amin(), saliency.amax()
    return (saliency - low) / (high - low).clamp_min(1e-8)


def subject_cue(distance, residual, xs, ys):
    """Achanta's distance and the spectral residual (1, 1, h, w), each and their centre-weighted sum (0.6 / 0.4,
    as the style programs weigh them) standardised over the photo: (map - mean) / std, clipped to +-4.
    ``xs``, ``ys`` (1, 1, h, w): the pixel's position in [-1, 1] (colour_context's position channels).

    Why: a subject is "more salient than this photo's average", a threshold that moves with every photo; a
    1x1 head on maps scaled to [0, 1] cannot draw it, on standardised maps it is a constant."""
    centre = torch.exp(-((xs / 0.6) ** 2 + (ys / 0.6) ** 2) / 2.0)
    combined = (0.6 * distance + 0.4 * residual) * (0.3 + 0.7 * centre)
    maps = torch.cat([distance, residual, combined], dim=1)
    mean, std = maps.mean((2, 3), keepdim=True), maps.std((2, 3), keepdim=True)
    return ((maps - mean) / std.clamp_min(1e-6)).clamp(-4.0, 4.0)


def colour_context(lab, saliency=False, subject=False):
    """Lab/100 (1, 3, h, w) -> (1, COLOUR_CHANNELS, h/4, w/4) maps of where a pixel is and what colours
    surround it: position (x, y in [-1, 1], x² + y²), the Lab averaged over boxes of ``COLOUR_POOLS`` of the
    photo, and the photo's mean and std Lab (constant maps); with ``saliency``, Achanta's distance to the
    photo's mean Lab and Hou & Zhang's spectral residual (SALIENCY_CHANNELS more); with ``subject`` (which
    needs ``saliency``), ``subject_cue`` of the two (SUBJECT_CHANNELS more)."""
    small = F.avg_pool2d(lab, 4, ceil_mode=True) if min(lab.shape[-2:]) >= 16 else lab
    _, _, h, w = small.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=lab.device).view(1, 1, h, 1).expand(1, 1, h, w)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=lab.device).view(1, 1, 1, w).expand(1, 1, h, w)
    pooled = [box_average(small, fraction) for fraction in COLOUR_POOLS]
    stats = torch.cat([lab.mean((2, 3)), lab.std((2, 3))], dim=1)[:, :, None, None].expand(1, 6, h, w)
    extra = []
    if saliency:  # classical saliency: Achanta's distance to the photo's mean Lab, Hou & Zhang's spectral residual
        distance = torch.linalg.vector_norm(small - lab.mean((2, 3), keepdim=True), dim=1, keepdim=True)
        extra = [distance / distance.amax().clamp_min(1e-6), spectral_residual(small[:, :1])]
        if subject:
            extra.append(subject_cue(*extra, xs, ys))
    return torch.cat([xs, ys, xs * xs + ys * ys] + pooled + [stats] + extra, dim=1)
