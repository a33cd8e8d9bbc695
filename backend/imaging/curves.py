"""Tone and colour curves as a value: one curve per channel, in sRGB or in EnhanceGAN's normalised Lab.

A model predicts a curve's few parameters at low resolution (EnhanceGAN's piecewise enhancer: a, b, p, q,
alpha, beta); ``ToneCurves`` holds it sampled at ``knots`` evenly spaced inputs in [0, 1], and ``apply``
maps every pixel of a full-resolution layer through it by linear interpolation, band by band. Curves
have no resolution, so what the network saw at 512 px applies unchanged at 24 MP.

Spaces: ``rgb`` (sRGB-encoded channels in [0, 1]); ``lab`` (EnhanceGAN's normalisation: L / 100,
(a + 128) / 255, (b + 128) / 255, each in [0, 1]).

    >>> curves = ToneCurves.identity()
    >>> image = torch.rand(3, 8, 8)
    >>> bool(torch.allclose(curves.apply(image.clone()), image, atol=1e-6))
    True
"""

import torch

from . import color

SPACES = ("rgb", "lab")


def _to_space(rgb, space):
    if space == "rgb":
        return rgb
    lab = color.rgb_to_lab(rgb.unsqueeze(0))[0]
    return torch.stack([lab[0] / 100.0, (lab[1] + 128.0) / 255.0, (lab[2] + 128.0) / 255.0])


def _from_space(values, space):
    if space == "rgb":
        return values
    lab = torch.stack([values[0] * 100.0, values[1] * 255.0 - 128.0, values[2] * 255.0 - 128.0])
    return color.lab_to_rgb(lab.unsqueeze(0))[0]


class ToneCurves:
    """``knots`` (3, N): output values of each channel's curve at inputs 0, 1/(N-1), ..., 1."""

    def __init__(self, knots, space="rgb"):
        knots = torch.as_tensor(knots, dtype=torch.float32)
        if knots.dim() != 2 or knots.shape[0] != 3 or knots.shape[1] < 2:
            raise ValueError("tone curves are 3 channels of at least 2 knots, got shape %s" % (tuple(knots.shape),))
        if space not in SPACES:
            raise ValueError("unknown curve space %r; known: %s" % (space, ", ".join(SPACES)))
        self.knots, self.space = knots, space

    @classmethod
    def identity(cls, knots=256, space="rgb"):
        return cls(torch.linspace(0.0, 1.0, knots).expand(3, -1), space)

    @classmethod
    def from_function(cls, function, knots=256, space="rgb"):
        """Sample ``function`` (inputs (3, N) in [0, 1] -> outputs (3, N)) at ``knots`` inputs."""
        return cls(function(torch.linspace(0.0, 1.0, knots).expand(3, -1).clone()), space)

    def map(self, values):
        """Curves applied to (3, ...) values in [0, 1] (clamped into the curve's domain)."""
        n = self.knots.shape[1]
        position = values.clamp(0.0, 1.0) * (n - 1)
        low = position.floor().long().clamp_(max=n - 2)
        weight = position - low
        flat = low.reshape(3, -1)
        below = torch.gather(self.knots, 1, flat).reshape(values.shape)
        above = torch.gather(self.knots, 1, flat + 1).reshape(values.shape)
        return torch.lerp(below, above, weight)

    def apply(self, image, mix=None, rows=128, on_progress=None):
        """In place on a planar sRGB (3, H, W) image of any size, blended by ``mix`` (imaging.mixing.Mix)."""
        amount = mix.amount() if mix is not None else None
        height = image.shape[1]
        for start in range(0, height, rows):
            band = image[:, start:start + rows]
            result = _from_space(self.map(_to_space(band, self.space)), self.space)
            if amount is not None:
                share = amount if isinstance(amount, float) else amount[:1, start:start + rows]
                result = torch.lerp(band, result, share)
            band.copy_(result)
            if on_progress and ((start // rows) % 16 == 15 or start + rows >= height):
                on_progress(min(1.0, (start + rows) / height))
        return image
