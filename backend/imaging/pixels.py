"""Layer pixels as they arrive (u8/u16/f32, 1-4 channels, perceptual or linear) <-> the float RGB
the models work on, and back to exactly the arriving format.

Why a room of its own: every model must give back a layer with the same channels, bit depth and
transfer as the one it got, with alpha passed through byte for byte, and gray layers kept gray.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from . import color

PERCEPTUAL, LINEAR = "perceptual", "linear"
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


@dataclass
class Layer:
    """A decoded layer: ``rgb`` is float32 (3, H, W) planar, sRGB-encoded; ``alpha`` the untouched alpha samples.

    Planar because every model and every full-resolution operation works per channel plane.
    """

    rgb: torch.Tensor
    alpha: np.ndarray | None
    dtype: np.dtype
    channels: int
    transfer: str

    @property
    def height(self):
        return self.rgb.shape[1]

    @property
    def width(self):
        return self.rgb.shape[2]

    def nchw(self):
        """A (1, 3, H, W) view of ``rgb`` (no copy)."""
        return self.rgb.unsqueeze(0)


def to_unit_float(samples):
    """(H, W, C) u8/u16/f32 -> float32 (C, H, W) tensor in [0, 1] (floats unscaled), in one pass."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.flags.writeable:
        source = torch.from_numpy(samples)  # strided views are fine: the copy below transposes and converts at once
    else:  # a read-only mapping (a client's shared memory): only read here, so torch's warning does not apply
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            source = torch.from_numpy(samples)
    planes = torch.empty((samples.shape[2],) + samples.shape[:2], dtype=torch.float32)
    planes.copy_(source.permute(2, 0, 1))
    if samples.dtype in _SCALE:
        planes.mul_(1.0 / _SCALE[samples.dtype])
    return planes


def from_unit_float(planes, dtype, out, rows=256):
    """float (C, H, W) in [0, 1] -> ``out`` (H, W, C) numpy of ``dtype``: rounded and clipped for integers,
    kept unclipped for float32. Works in bands of rows so no full-size temporary is made."""
    dtype = np.dtype(dtype)
    target = torch.from_numpy(out)
    height = planes.shape[1]
    for start in range(0, height, rows):
        band = planes[:, start:start + rows]
        if dtype in _SCALE:
            band = band.mul(_SCALE[dtype]).add_(0.5).clamp_(0, _SCALE[dtype])
        target[start:start + rows].copy_(band.permute(1, 2, 0))
    return out


def decode(pixels, transfer=PERCEPTUAL):
    """(H, W, C) array with C in 1..4 -> Layer with planar sRGB-encoded float RGB."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    has_alpha = channels in (2, 4)
    rgb = to_unit_float(pixels[:, :, : channels - 1] if has_alpha else pixels)
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1).contiguous()
    if transfer == LINEAR:
        rgb = color.linear_to_srgb(rgb)
    alpha = pixels[:, :, channels - 1:] if has_alpha else None
    return Layer(rgb=rgb, alpha=alpha, dtype=pixels.dtype, channels=channels, transfer=transfer)


def encode(rgb, like):
    """sRGB-encoded planar float RGB (3, H, W) -> (H, W, C) array in ``like``'s format, with ``like``'s alpha."""
    if like.transfer == LINEAR:
        rgb = color.srgb_to_linear(rgb)
    if like.channels in (1, 2):
        rgb = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]).unsqueeze(0)
    height, width = rgb.shape[1:]
    out = np.empty((height, width, like.channels), dtype=like.dtype)
    from_unit_float(rgb, like.dtype, out[:, :, : rgb.shape[0]])
    if like.alpha is not None:
        out[:, :, -1:] = like.alpha
    return out


def decode_mask(mask):
    """A selection or adjustment map (H, W, K) of any sample type -> float32 (K, H, W) tensor in [0, 1]."""
    return to_unit_float(mask).clamp_(0.0, 1.0)


def quantise_map(values):
    """A soft map (H, W) in [0, 1] -> uint8 (H, W), for returning adjustment maps as channels."""
    return values.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()
