"""Layer pixels as they arrive (u8/u16/f32, 1-4 channels, perceptual or linear) <-> the float RGB
the models work on, and back to exactly the arriving format.

Why a room of its own: every model must give back a layer with the same channels, bit depth and
transfer as the one it got, with alpha passed through byte for byte, and gray layers kept gray.
"""

from dataclasses import dataclass

import numpy as np
import torch

from . import color

PERCEPTUAL, LINEAR = "perceptual", "linear"
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


@dataclass
class Layer:
    """A decoded layer: ``rgb`` is float32 (H, W, 3) sRGB-encoded; ``alpha`` the untouched alpha samples."""

    rgb: torch.Tensor
    alpha: np.ndarray | None
    dtype: np.dtype
    channels: int
    transfer: str

    @property
    def height(self):
        return self.rgb.shape[0]

    @property
    def width(self):
        return self.rgb.shape[1]

    def nchw(self):
        """A (1, 3, H, W) view of ``rgb`` (no copy)."""
        return self.rgb.permute(2, 0, 1).unsqueeze(0)


def to_unit_float(samples):
    """u8/u16 -> float32 in [0, 1]; float32 passes unchanged. Returns a torch tensor."""
    samples = np.asarray(samples)
    if samples.dtype in _SCALE:
        return torch.from_numpy(samples.astype(np.float32)).mul_(1.0 / _SCALE[samples.dtype])
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))


def from_unit_float(values, dtype):
    """float [0, 1] -> u8/u16 (rounded, clipped) or float32 (kept, unclipped). Returns numpy."""
    dtype = np.dtype(dtype)
    if dtype in _SCALE:
        scaled = values.mul(_SCALE[dtype]).add_(0.5).clamp_(0, _SCALE[dtype])
        return scaled.to(torch.int32).numpy().astype(dtype)
    return values.numpy().astype(np.float32, copy=False)


def decode(pixels, transfer=PERCEPTUAL):
    """(H, W, C) array with C in 1..4 -> Layer with sRGB-encoded float RGB."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    has_alpha = channels in (2, 4)
    colour = pixels[:, :, : channels - 1] if has_alpha else pixels
    rgb = to_unit_float(colour)
    if rgb.shape[2] == 1:
        rgb = rgb.expand(-1, -1, 3).contiguous()
    if transfer == LINEAR:
        rgb = color.linear_to_srgb(rgb)
    alpha = pixels[:, :, channels - 1:].copy() if has_alpha else None
    return Layer(rgb=rgb, alpha=alpha, dtype=pixels.dtype, channels=channels, transfer=transfer)


def encode(rgb, like):
    """sRGB-encoded float RGB (H, W, 3) -> an array in ``like``'s format, with ``like``'s alpha."""
    if like.transfer == LINEAR:
        rgb = color.srgb_to_linear(rgb)
    if like.channels in (1, 2):
        r, g, b = rgb.unbind(-1)
        # Rec.709 luma in linear light would differ; GIMP's own desaturate uses luminance of the encoded values
        rgb = (0.2126 * r + 0.7152 * g + 0.0722 * b).unsqueeze(-1)
    colour = from_unit_float(rgb, like.dtype)
    if like.alpha is not None:
        colour = np.concatenate([colour, like.alpha], axis=2)
    return colour


def decode_mask(mask):
    """A selection or adjustment map (H, W, K) of any sample type -> float32 tensor in [0, 1]."""
    return to_unit_float(mask).clamp_(0.0, 1.0)


def blend(original, adjusted, mask):
    """Where the selection is 1 take the adjusted pixels, where 0 the original; soft edges mix."""
    if mask is None:
        return adjusted
    weight = mask[:, :, :1]
    return original + (adjusted - original) * weight
