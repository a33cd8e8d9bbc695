"""Image files in and out: any format OpenCV reads; 16-bit PNG/TIFF stay 16-bit, channels become RGB(A).

Nothing the user had is lost or misread: the size is read from the header and refused before any
decoding, a truncated file is refused rather than processed with a grey band, the EXIF orientation
is applied on reading, and the EXIF and ICC profile travel to the output (``Metadata``). Outputs are
checked (format, path, never the input) before any work, and written under a temporary name that
is renamed into place, so a failure never leaves half a file. Pillow reads headers and metadata;
OpenCV decodes and encodes the pixels (it keeps 16-bit and float samples).
"""

import os
import secrets
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

MAX_PIXELS = 120_000_000  # the daemon's default limit: a bigger file is refused before it is decoded
WRITABLE = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
ORIENTATION = 0x0112  # the EXIF tag


class ImageFileError(Exception):
    pass


@dataclass
class Metadata:
    """What the output carries over from the input: EXIF (orientation reset, the pixels are turned) and ICC."""

    exif: bytes = None
    icc_profile: bytes = None


def _turned(pixels, orientation):
    """Apply an EXIF orientation (1-8) to an (H, W, C) array, as a viewer shows the photo."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
             7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
             8: lambda a: np.rot90(a, 1)}
    if orientation not in turns:
        return pixels
    return np.ascontiguousarray(turns[orientation](pixels))


def _probe(path, max_pixels):
    """Header, metadata and integrity, without keeping the pixels: returns (orientation, Metadata)."""
    from PIL import Image, UnidentifiedImageError

    bomb_limit = Image.MAX_IMAGE_PIXELS  # our own check below says more (the size) and is as early
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:
            Image.MAX_IMAGE_PIXELS = bomb_limit
            width, height = image.size
            if width * height > max_pixels:
                raise ImageFileError("%s is %d x %d = %.0f megapixels; at most %.0f are accepted"
                                     % (path, width, height, width * height / 1e6, max_pixels / 1e6))
            metadata = Metadata(icc_profile=image.info.get("icc_profile") or None)
            exif = image.getexif()
            orientation = int(exif.get(ORIENTATION, 1) or 1)
            if exif:
                if ORIENTATION in exif:
                    exif[ORIENTATION] = 1
                metadata.exif = exif.tobytes()
            if image.format in ("JPEG", "PNG", "WEBP", "GIF"):  # a cut-off file must not pass as an image
                image.load()
            return orientation, metadata
    except ImageFileError:
        raise
    except UnidentifiedImageError:
        return 1, Metadata()  # a format only OpenCV knows (EXR, HDR, PFM): it decodes and checks it
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageFileError("%s is truncated or damaged (%s); refusing to process part of an image"
                             % (path, str(error).rstrip("."))) from None
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit


def read_image(path, max_pixels=MAX_PIXELS):
    """-> (H, W, C) uint8/uint16/float32 array in RGB(A) order (C = 1, 2, 3 or 4), EXIF orientation applied."""
    return read_image_and_metadata(path, max_pixels)[0]


def read_image_and_metadata(path, max_pixels=MAX_PIXELS):
    """-> (pixels as ``read_image`` returns them, Metadata to carry to the output)."""
    if not os.path.exists(path):
        raise ImageFileError("no such image file: %s" % path)
    if os.path.isdir(path):
        raise ImageFileError("%s is a directory, not an image file" % path)
    orientation, metadata = _probe(path, max_pixels)
    try:
        pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)  # UNCHANGED: the orientation is ours to apply
    except cv2.error:
        pixels = None
    if pixels is None:
        try:  # formats OpenCV lacks (e.g. some GIFs): Pillow, 8-bit
            from PIL import Image

            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
        except Exception:
            raise ImageFileError("cannot read %s as an image" % path) from None
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype == np.float64:
        pixels = pixels.astype(np.float32)
    return _turned(pixels, orientation), metadata


def check_output(path, inputs=(), overwrite=False):
    """Refuse an output that cannot be written, before any work: unknown format, a directory, a parent
    that is a file, or one of the ``inputs`` (unless ``overwrite``). Raises ImageFileError (one sentence)."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITABLE:
        raise ImageFileError("cannot write %s: unknown output format %r; use one of %s"
                             % (path, extension or "(no extension)", ", ".join(WRITABLE)))
    if os.path.isdir(path):
        raise ImageFileError("cannot write %s: it is a directory; give a file name" % path)
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ImageFileError("cannot write %s: %s is not a folder this user may write in" % (path, parent))
    for source in inputs:
        if source and os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            if not overwrite:
                raise ImageFileError("refusing to write over the input %s; give another output or pass --overwrite"
                                     % source)


def _to_depth(pixels, extension):
    """The samples the format can hold: 8-bit formats get rounded 8-bit; PNG gets 16-bit for floats
    (clipped to 0..1: PNG has no float samples); TIFF keeps float32."""
    if extension in EIGHT_BIT_ONLY and pixels.dtype != np.uint8:
        scale = 255.0 / 65535.0 if pixels.dtype == np.uint16 else 255.0
        return np.clip(pixels.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if extension == ".png" and pixels.dtype.kind == "f":
        return np.clip(np.nan_to_num(pixels) * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    if pixels.dtype.kind == "f" and pixels.dtype != np.float32:
        return pixels.astype(np.float32)
    return pixels


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_metadata(encoded, metadata):
    """Insert iCCP and eXIf chunks right after IHDR (OpenCV writes neither)."""
    chunks = b""
    if metadata.icc_profile:
        chunks += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(metadata.icc_profile))
    if metadata.exif:
        exif = metadata.exif[6:] if metadata.exif.startswith(b"Exif\x00\x00") else metadata.exif
        chunks += _png_chunk(b"eXIf", exif)
    end_of_header = 8 + 8 + 13 + 4
    return encoded[:end_of_header] + chunks + encoded[end_of_header:]


def _encode(pixels, extension, metadata):
    """The file's bytes. Pillow writes 8-bit JPEG/WebP/TIFF with metadata; OpenCV writes the rest."""
    if metadata is not None and (metadata.exif or metadata.icc_profile) and pixels.dtype == np.uint8 \
            and extension in (".jpg", ".jpeg", ".webp", ".tif", ".tiff") and pixels.shape[2] in (1, 3, 4):
        import io

        from PIL import Image

        if extension in (".jpg", ".jpeg") and pixels.shape[2] == 4:
            pixels = pixels[:, :, :3]
        image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
        options = {"exif": metadata.exif or b"", "icc_profile": metadata.icc_profile or None}
        if extension in (".jpg", ".jpeg", ".webp"):
            options["quality"] = 95
        out = io.BytesIO()
        image.save(out, format={".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(extension, "TIFF"),
                   **{k: v for k, v in options.items() if v})
        return out.getvalue()
    if pixels.shape[2] == 2:  # gray + alpha: no such PNG in OpenCV, write RGBA
        pixels = pixels[:, :, [0, 0, 0, 1]]
    if pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    elif pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    try:
        ok, encoded = cv2.imencode(extension, pixels)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageFileError("cannot write a %s-bit %d-channel image as %s" % (
            pixels.dtype.itemsize * 8, 1 if pixels.ndim == 2 else pixels.shape[2], extension))
    encoded = encoded.tobytes()
    if extension == ".png" and metadata is not None:
        encoded = _png_with_metadata(encoded, metadata)
    return encoded


def write_image(path, pixels, metadata=None):
    """Write an (H, W, C) array (with the input's ``metadata``, when given), under a temporary name first.
    8-bit-only formats (JPEG) get a rounded 8-bit copy; a float layer written as PNG becomes 16-bit."""
    check_output(path)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    extension = os.path.splitext(path)[1].lower()
    encoded = _encode(_to_depth(pixels, extension), extension, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, ".%s.%s.part" % (os.path.basename(path), secrets.token_hex(4)))
    try:
        with open(temporary, "wb") as handle:
            handle.write(encoded)
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise ImageFileError("cannot write %s: %s" % (path, error.strerror)) from None
