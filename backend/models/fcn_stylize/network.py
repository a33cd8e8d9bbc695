"""Zhu & Yu 2018's stylization FCN: per-pixel 3x10 quadratic Lab transforms from two-scale VGG-16 context.

The paper: VGG-16 made fully convolutional with pool4/pool5 at stride 1 and conv5/conv6 dilated by 2/4
(output stride 8), fine-tuned on ADE20K; the image and its 2x upsampled copy each go through a copy of it
(reflection-padded), each conv7 map is interpolated to the output grid; the pixel's Lab and both context
features pass two 1x1 convolutions with ReLU and a 30-channel 1x1 convolution: a 3x10 matrix per pixel that
multiplies the quadratic basis [L², a², b², La, Lb, ab, L, a, b, 1] of the pixel's Lab.

Here (each a deviation stated in the model card, ``backend/weights/fcn-stylize.md``):
- the VGG-16 is HED's (ImageNet, then BSDS500 edges; the only VGG-16 weights available offline), at output
  stride 8 with conv5 dilated by 2; fc6/fc7 (conv6/conv7) exist in no available file, so the context is
  conv5_3 (512 channels), and the backbone is frozen (CPU: features are computed once and cached);
- the two scales are the daemon's <= 512 px view (the paper's "2x upsampled" copy) and that view halved
  (the paper's "original"): the same ratio of receptive field to image, at a quarter of the cost;
- each context map is standardised by training-set statistics and reduced to its first ``rank`` principal
  components (both fixed, computed on the training maps, shipped in the weights): the first 1x1 layer is
  factorised through them, which makes training on the CPU ~8x cheaper; the last layer starts at zero
  around the identity transform, so an untrained network leaves the photo alone.

Bilinear interpolation is linear, so the first 1x1 layer's context part is applied at the feature maps'
own resolution and *then* interpolated: the same numbers as interpolating 1024 channels, far cheaper.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ...imaging import color
from ...imaging.context import (COLOUR_CHANNELS, COLOUR_POOLS, SALIENCY_CHANNELS, box_average,  # noqa: F401
                                colour_context, spectral_residual)
from ...imaging.upsample import pixel_grid, sample_maps

LAB_SCALE = 100.0
# the predicted maps are regularised edge-aware on the view before they are applied: a colour-guided filter
# (radius in view pixels, eps for sRGB in [0, 1]); on val it lowered every style's error (local-xpro 8.81 ->
# 8.12, cold 1.10 -> 0.89, pop-out 9.14 -> 8.86; radius 16 / 32 / 64 / 128 compared, 64 the best overall)
EDGE_RADIUS = 64
EDGE_EPS = 1e-3   # the transforms' units: Lab / 100 in and out (imaging/transforms "quadratic-lab")
PAD = 32            # reflection padding of each scale's input (px), a multiple of the output stride
STRIDE = 8
BACKBONE = "vgg16-hed-dilated"
CONTEXT_LEVEL = 16  # conv5_3 (at stride 8 in the dilated backbone)


def default_config(style):
    return {"style": style, "backbone": BACKBONE, "level": CONTEXT_LEVEL, "channels": 512, "scales": 2,
            "rank": 64, "hidden": [256, 128]}


def identity_matrix():
    identity = torch.zeros(3, 10)
    identity[0, 6], identity[1, 7], identity[2, 8] = 1.0, 1.0, 1.0
    return identity


def scale_inputs(rgb):
    """The two scales of a view (1, 3, h, w): [the view halved (the paper's original), the view itself]."""
    half = F.interpolate(rgb, scale_factor=0.5, mode="area") if min(rgb.shape[-2:]) >= 64 else rgb
    return [half, rgb]


def context_maps(rgb, features_of):
    """Raw conv5_3 maps [(1, 512, h/16, w/16), (1, 512, h/8, w/8)] of the two scales of ``rgb``.

    ``features_of(image) -> pyramid`` runs the (frozen) backbone; each scale is reflection-padded by PAD
    px and the padding's cells are cropped off the map again, so border pixels see mirrored context."""
    maps = []
    for image in scale_inputs(rgb):
        pad = min(PAD, image.shape[-1] - 1, image.shape[-2] - 1) // STRIDE * STRIDE
        padded = F.pad(image, (pad, pad, pad, pad), mode="reflect") if pad else image
        level = features_of(padded)[CONTEXT_LEVEL]
        cells = pad // STRIDE
        maps.append(level[..., cells:level.shape[-2] - cells, cells:level.shape[-1] - cells] if cells else level)
    return maps


def edge_aware(coefficients, rgb, radius=EDGE_RADIUS, eps=EDGE_EPS):
    """(1, 30, h, w) maps -> the same, each channel locally an affine function of the view's colours
    (a guided filter): transforms change where the photo's colours change, not in between."""
    from ...imaging import upsample

    if radius <= 0:
        return coefficients
    fit = upsample.fit_local_affine(rgb, coefficients, radius, eps, prior=None)
    fit = fit.view(1, coefficients.shape[1], 4, *fit.shape[-2:])
    return fit[:, :, 3] + fit[:, :, 0] * rgb[:, 0:1] + fit[:, :, 1] * rgb[:, 1:2] + fit[:, :, 2] * rgb[:, 2:3]


def network_lab(rgb):
    """sRGB (N, 3, h, w) -> Lab / 100 (the pixel feature and the basis' input)."""
    return color.rgb_to_lab(rgb) / LAB_SCALE


class FCNStylizer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        channels, scales, rank = config["channels"], config["scales"], config["rank"]
        first, second = config["hidden"]
        self.register_buffer("feature_mean", torch.zeros(scales, channels))
        self.register_buffer("feature_std", torch.ones(scales, channels))
        self.register_buffer("components", torch.eye(rank, channels).repeat(scales, 1, 1))  # (scales, rank, C)
        # optional region context: the reduced maps also box-averaged over these fractions of the map (fixed)
        self.pools = tuple(config.get("pools", ()))
        self.context = nn.ModuleList(nn.Conv2d(rank * (1 + len(self.pools)), first, 1, bias=False)
                                     for _ in range(scales))
        self.pixel = nn.Linear(3, first)
        # optional colour context (position, neighbourhood and photo Lab: ``colour_context``)
        self.saliency = bool(config.get("saliency"))
        self.colour = nn.Conv2d(COLOUR_CHANNELS + SALIENCY_CHANNELS * self.saliency, first, 1, bias=False) \
            if config.get("colour_context") else None
        self.hidden = nn.Linear(first, second)
        # optional image-level context: each scale's reduced map pooled (mean, std) over the whole photo
        self.image = nn.Linear(2 * rank * scales, first) if config.get("image_context") else None
        self.out = nn.Linear(second, 30)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def reduced(self, maps):
        """Raw context maps -> standardised principal components (1, rank, h, w) per scale, and their box
        averages over each ``pools`` fraction of the map (fixed maths, no parameters)."""
        out = []
        for m, mean, std, parts in zip(maps, self.feature_mean, self.feature_std, self.components):
            r = torch.einsum("rc,nchw->nrhw", parts, (m.float() - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1))
            pooled = [box_average(r, fraction) for fraction in self.pools]
            out.append(torch.cat([r] + pooled, dim=1) if pooled else r)
        return out

    def projected(self, maps, reduced=None, lab=None):
        """Context maps (or their ``reduced`` components) -> contributions to the first layer, at the maps'
        own resolution (the image-level term, if any, as a 1x1 map: the same at every pixel); ``lab``: the
        view's Lab/100 (1, 3, h, w), for the colour context."""
        reduced = reduced if reduced is not None else self.reduced(maps)
        terms = [conv(r) for conv, r in zip(self.context, reduced)]
        if self.image is not None:
            terms.append(self.image_term(reduced)[:, :, None, None])
        if self.colour is not None:
            terms.append(self.colour(colour_context(lab, self.saliency)))
        return terms

    def image_term(self, reduced):
        rank = self.config["rank"]
        pooled = torch.cat([torch.cat([r[:, :rank].mean((2, 3)), r[:, :rank].std((2, 3))], dim=1) for r in reduced], dim=1)
        return self.image(pooled)

    def matrices_at(self, projected, lab_at, positions):
        """Per-pixel transforms (N, P, 3, 10) at ``positions`` (N, P, 2) in [-1, 1] (x, y), pixel Lab/100
        ``lab_at`` (N, P, 3): the projected context sampled bilinearly (the interpolation layers), then
        the 1x1s."""
        hidden = self.pixel(lab_at)
        for level in projected:
            hidden = hidden + sample_maps(level, positions)
        return self.head(hidden, lab_at)

    def matrices_from_sampled(self, sampled, lab_at, reduced=None, colour=None):
        """The same from the reduced context already sampled at the pixels [(N, P, rank)] (training: the
        interpolation commutes with the linear projection, and sampling fixed maps needs no gradient);
        ``reduced``: the whole maps, for the image-level term; ``colour``: the colour context sampled at
        the pixels (N, P, COLOUR_CHANNELS)."""
        hidden = self.pixel(lab_at)
        if self.colour is not None:
            hidden = hidden + F.linear(colour, self.colour.weight[:, :, 0, 0])
        if self.image is not None:
            hidden = hidden + self.image_term(reduced).unsqueeze(1)
        for conv, features in zip(self.context, sampled):
            hidden = hidden + F.linear(features, conv.weight[:, :, 0, 0])
        return self.head(hidden, lab_at)

    def head(self, hidden, lab_at):
        hidden = F.relu(self.hidden(F.relu(hidden)))
        return identity_matrix().to(lab_at) + self.out(hidden).view(*lab_at.shape[:2], 3, 10)

    @staticmethod
    def transform(matrices, lab_at):
        """(N, P, 3, 10) matrices on pixel Lab/100 (N, P, 3) -> output Lab/100 (N, P, 3)."""
        basis = color.quadratic_lab_basis(lab_at.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # (N, P, 10)
        return (matrices * basis.unsqueeze(-2)).sum(-1)

    def coefficient_maps(self, maps, rgb, chunk=65536):
        """The dense 3x10 maps (1, 30, h, w) on the grid of the view ``rgb`` (1, 3, h, w)."""
        _, _, h, w = rgb.shape
        lab = network_lab(rgb)
        lab_at = lab.flatten(2).transpose(1, 2)
        positions = pixel_grid(h, w, rgb.device)
        with torch.no_grad():
            projected = self.projected(maps, lab=lab)
            pieces = [self.matrices_at(projected, lab_at[:, s:s + chunk], positions[:, s:s + chunk])
                      for s in range(0, h * w, chunk)]
        return torch.cat(pieces, dim=1)[0].reshape(h, w, 30).permute(2, 0, 1).unsqueeze(0).contiguous()

