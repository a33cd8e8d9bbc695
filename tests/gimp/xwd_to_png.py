"""Convert an X window dump (``xwd -root`` of a TrueColor ZPixmap screen) to PNG, for the README screenshot.

Handles 16 (RGB 565), 24 and 32 bits per pixel. The screenshot runs Xvfb at depth 16 because GTK's
popup menus paint black into a depth-24 Xvfb without a compositor.
"""

import struct
import sys

import numpy as np
from PIL import Image


def read_xwd(path):
    with open(path, "rb") as handle:
        data = handle.read()
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    lsb_first, bits_per_pixel, bytes_per_line, colors = fields[7] == 0, fields[11], fields[12], fields[19]
    if bits_per_pixel not in (16, 24, 32):
        raise ValueError("only 16, 24 or 32 bits per pixel are handled, not %d" % bits_per_pixel)
    step = bits_per_pixel // 8
    rows = np.frombuffer(data, np.uint8, bytes_per_line * height, header_size + colors * 12)
    pixels = rows.reshape(height, bytes_per_line)[:, :width * step].reshape(height, width, step)
    if step == 2:
        value = pixels.view("<u2" if lsb_first else ">u2")[..., 0].astype(np.uint32)
        red, green, blue = (value >> 11) & 31, (value >> 5) & 63, value & 31
        return np.stack([red * 255 // 31, green * 255 // 63, blue * 255 // 31], axis=2).astype(np.uint8)
    return pixels[..., [2, 1, 0]] if lsb_first else pixels[..., -3:]


if __name__ == "__main__":
    Image.fromarray(np.ascontiguousarray(read_xwd(sys.argv[1]))).save(sys.argv[2])
