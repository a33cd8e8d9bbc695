"""Image files in and out: any format OpenCV reads; 16-bit PNG/TIFF stay 16-bit, channels become RGB(A)."""

import os

import cv2
import numpy as np


class ImageFileError(Exception):
    pass


def read_image(path):
    """-> (H, W, C) uint8/uint16/float32 array in RGB(A) order (C = 1, 2, 3 or 4)."""
    if not os.path.exists(path):
        raise ImageFileError("no such image file: %s" % path)
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        try:  # formats OpenCV lacks (e.g. some GIFs): Pillow, 8-bit
            from PIL import Image

            pixels = np.asarray(Image.open(path).convert("RGBA" if "A" in Image.open(path).mode else "RGB"))
            return pixels if pixels.ndim == 3 else pixels[:, :, None]
        except Exception:
            raise ImageFileError("cannot read %s as an image" % path)
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels


def write_image(path, pixels):
    """Write an (H, W, C) array; 8-bit-only formats (JPEG) get a rounded 8-bit copy."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    extension = os.path.splitext(path)[1].lower()
    if extension in (".jpg", ".jpeg", ".webp", ".bmp") and pixels.dtype != np.uint8:
        scale = 255.0 / 65535.0 if pixels.dtype == np.uint16 else 255.0
        pixels = np.clip(pixels.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 2:  # gray + alpha: no such PNG in OpenCV, write RGBA
        pixels = pixels[:, :, [0, 0, 0, 1]]
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, pixels):
        raise ImageFileError("cannot write %s (unknown extension or unsupported depth)" % path)
