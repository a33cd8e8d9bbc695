"""Images on the wire: a header, then raw bytes in chunks; the same code for both directions.

Depends on numpy and ``schema`` only (the GIMP plug-in carries a copy). Pixels are row-major,
channels interleaved, little-endian: exactly a C-contiguous numpy array's memory, so sending is a
slice of that memory and receiving fills one preallocated buffer (no concatenation of chunks).
"""

import threading
import time

import numpy as np

from . import schema

CHUNK_BYTES = 2 << 20  # below gRPC's default 4 MiB message limit, so any client can read us
DTYPES = {schema.U8: np.dtype("<u1"), schema.U16: np.dtype("<u2"), schema.F32: np.dtype("<f4")}
SAMPLE_TYPES = {np.dtype(np.uint8): schema.U8, np.dtype(np.uint16): schema.U16, np.dtype(np.float32): schema.F32}
SAMPLE_NAMES = {schema.U8: "u8", schema.U16: "u16", schema.F32: "f32"}
DEFAULT_MAX_PIXELS = 120_000_000  # 120 MP: a 24 MP layer with room to spare; 100000x100000 is refused
STALL_SECONDS = 60.0  # an upload that sends nothing for this long is given up


class UploadBehind(Exception):
    """Raised in the worker when the next band of a streamed upload has not arrived in time: the worker
    is handed back, and the rest of the work waits until the upload is complete (``row``: where to go on)."""

    def __init__(self, row):
        super().__init__("the upload fell behind at row %d" % row)
        self.row = row


class WireError(Exception):
    """A request the daemon refuses; ``code`` is a gRPC status name, the message a sentence for a person."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def header_for(array, transfer=None, role=""):
    """The ImageHeader describing a (H, W) or (H, W, C) array of uint8, uint16 or float32."""
    array = np.asarray(array)
    if array.dtype not in SAMPLE_TYPES:
        raise WireError("INVALID_ARGUMENT", "pixels must be uint8, uint16 or float32, not %s" % array.dtype)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    return schema.ImageHeader(width=width, height=height, channels=channels,
                              sample_type=SAMPLE_TYPES[array.dtype],
                              transfer=transfer or schema.PERCEPTUAL, role=role)


def mask_header_for(mask):
    mask = np.asarray(mask)
    if mask.dtype not in SAMPLE_TYPES:
        raise WireError("INVALID_ARGUMENT", "a mask must be uint8, uint16 or float32, not %s" % mask.dtype)
    return schema.MaskHeader(channels=1 if mask.ndim == 2 else mask.shape[2], sample_type=SAMPLE_TYPES[mask.dtype],
                             width=mask.shape[1], height=mask.shape[0])


def byte_view(array):
    array = np.asarray(array)
    if array.dtype.byteorder == ">" or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return memoryview(array.reshape(-1).view(np.uint8))


def chunks(array, chunk_bytes=CHUNK_BYTES):
    """Yield the array's bytes in chunks, without copying the whole array first."""
    view = byte_view(array)
    for start in range(0, len(view), chunk_bytes):
        yield bytes(view[start:start + chunk_bytes])


# -- the chunk fast path ---------------------------------------------------------------------------
# A message that carries only a chunk is, in protobuf's wire format, one tag byte, a varint length and
# the raw bytes. Writing and reading that directly saves two copies of every pixel in each direction
# (message object + serialisation; parse + field access); the bytes on the wire are the same, so any
# protobuf client talks to us unchanged.
REQUEST_CHUNK_TAG = 0x12  # field 2 (chunk), length-delimited, in every XRequest
REPLY_CHUNK_TAG = 0x1A    # field 3 (chunk), length-delimited, in Reply


class Chunk:
    """Pixel bytes taken straight from a received frame (a memoryview, no copy)."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def chunk_frames(array, tag, chunk_bytes=CHUNK_BYTES):
    """Serialized chunk messages (bytes) for the array, one copy of the pixels each."""
    view = byte_view(array)
    for start in range(0, len(view), chunk_bytes):
        piece = view[start:start + chunk_bytes]
        yield b"".join((bytes((tag,)), _varint(len(piece)), piece))


def frame_decoder(message_class, tag):
    """A deserializer: chunk frames become ``Chunk`` views, anything else a parsed ``message_class``."""

    def decode(data):
        if data[:1] == bytes((tag,)):
            shift, length, position = 0, 0, 1
            while True:
                byte = data[position]
                length |= (byte & 0x7F) << shift
                position += 1
                if not byte & 0x80:
                    break
                shift += 7
            if position + length == len(data):
                return Chunk(memoryview(data)[position:])
        return message_class.FromString(data)
    return decode


def serialize(message):
    """A serializer that passes pre-encoded frames through."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def request_frames(request_class, setup, image, mask=None):
    """The client side of an upload, pre-encoded: the setup, then image bytes, then mask bytes."""
    yield request_class(setup=setup).SerializeToString()
    yield from chunk_frames(image, REQUEST_CHUNK_TAG)
    if mask is not None:
        yield from chunk_frames(mask, REQUEST_CHUNK_TAG)


def style_pair_frames(setup, pairs, transfer=None):
    """The client side of a LearnStyle upload, pre-encoded: the setup, then for each (name or None, before,
    after) pair its before image and its after image, each a header (role "before/NAME") and its chunks."""
    request_class = schema.LearnStyleRequest
    yield request_class(setup=setup).SerializeToString()
    for name, before, after in pairs:
        for role, image in (("before", before), ("after", after)):
            header = header_for(image, transfer, role + ("/" + name if name else ""))
            yield request_class(image=header).SerializeToString()
            yield from chunk_frames(image, REQUEST_CHUNK_TAG)


def byte_count(width, height, channels, sample_type):
    return int(width) * int(height) * int(channels) * DTYPES[sample_type].itemsize


def check_image_header(header, max_pixels=DEFAULT_MAX_PIXELS, what="image"):
    """Refuse a header that cannot describe a real layer, with a sentence that says why."""
    if header.width == 0 or header.height == 0:
        raise WireError("INVALID_ARGUMENT", "the %s is empty (%d x %d pixels)" % (what, header.width, header.height))
    if header.width * header.height > max_pixels:
        raise WireError("RESOURCE_EXHAUSTED", "the %s has %d x %d = %.0f megapixels; this daemon accepts at most %.0f"
                        % (what, header.width, header.height, header.width * header.height / 1e6, max_pixels / 1e6))
    if not 1 <= header.channels <= 4:
        raise WireError("INVALID_ARGUMENT", "the %s has %d channels; 1 to 4 are supported (gray, gray+alpha, RGB, RGBA)"
                        % (what, header.channels))
    if header.sample_type not in DTYPES:
        raise WireError("INVALID_ARGUMENT", "the %s has no sample type; use u8, u16 or f32" % what)


def check_mask_header(header, mask_header):
    """Refuse a mask that does not fit the image; returns the mask header, or None when there is no mask."""
    if mask_header is None or not mask_header.channels:
        return None
    if not 1 <= mask_header.channels <= 64 or mask_header.sample_type not in DTYPES:
        raise WireError("INVALID_ARGUMENT", "the mask header is malformed (channels %d, sample type %d)"
                        % (mask_header.channels, mask_header.sample_type))
    size = (mask_header.width or header.width, mask_header.height or header.height)
    if size != (header.width, header.height):
        raise WireError("INVALID_ARGUMENT", "the mask is %d x %d pixels but the image is %d x %d: a mask must "
                        "cover the image exactly" % (size + (header.width, header.height)))
    return mask_header


class Receiver:
    """Fills one image (and its optional mask) from a stream of byte chunks.

    ``feed`` raises WireError as soon as more bytes arrive than the header announced; ``finish``
    raises if fewer did (a truncated stream). Float pixels must be finite.
    """

    def __init__(self, header, mask_header=None, max_pixels=DEFAULT_MAX_PIXELS):
        check_image_header(header, max_pixels)
        self.header = header
        self.mask_header = check_mask_header(header, mask_header)
        self.image_bytes = byte_count(header.width, header.height, header.channels, header.sample_type)
        self.mask_bytes = 0 if self.mask_header is None else byte_count(
            header.width, header.height, self.mask_header.channels, self.mask_header.sample_type)
        # a numpy buffer, not a bytearray: numpy backs big allocations with huge pages, which makes filling
        # 100 MB about three times cheaper (fewer page faults); it is never zeroed, every byte gets written
        self.buffer = np.empty(self.image_bytes + self.mask_bytes, np.uint8)
        self._bytes = memoryview(self.buffer)
        self.filled = 0
        self.error = None  # what broke the stream off, when another thread feeds (see ``rows``)
        self._arrival = threading.Condition()
        self._ended = False

    @property
    def expected(self):
        return len(self.buffer)

    def feed(self, data):
        end = self.filled + len(data)
        if end > len(self.buffer):
            raise WireError("INVALID_ARGUMENT", "more pixel bytes arrived (%d) than the header announced (%d): "
                            "check width, height, channels and sample type" % (end, len(self.buffer)))
        self._bytes[self.filled:end] = data
        with self._arrival:
            self.filled = end
            self._arrival.notify_all()

    def end(self, error=None):
        """The feeding thread is done: the stream ended, or ``error`` broke it off."""
        with self._arrival:
            self._ended = True
            self.error = self.error or error
            self._arrival.notify_all()

    def _truncated(self):
        return WireError("INVALID_ARGUMENT", "the stream ended after %d of %d pixel bytes: the upload was truncated"
                         % (self.filled, len(self.buffer)))

    def _image(self):
        h, w = self.header.height, self.header.width
        image = np.frombuffer(self.buffer, DTYPES[self.header.sample_type], h * w * self.header.channels)
        return image.reshape(h, w, self.header.channels)

    def _stalled(self, seconds):
        return WireError("DEADLINE_EXCEEDED", "the upload stalled: no pixel bytes arrived for %.0f s" % seconds)

    def wait_for(self, count, stall_seconds=STALL_SECONDS):
        """Block until at least ``count`` bytes are in (or the stream broke off, ended short or stalled)."""
        with self._arrival:
            while self.error is None and self.filled < count:
                if self._ended:
                    raise self._truncated()
                if not self._arrival.wait(stall_seconds):
                    raise self._stalled(stall_seconds)
            if self.error is not None:
                raise self.error

    def wait_ended(self, seconds):
        """True once the feeding thread has called ``end`` (waiting up to ``seconds``)."""
        with self._arrival:
            return self._arrival.wait_for(lambda: self._ended, seconds)

    def rows(self, band_rows, stall_seconds=STALL_SECONDS, start=0, behind_after=None):
        """Yield the image as (rows, W, C) bands of at most ``band_rows`` rows from row ``start``, each as
        soon as it has arrived, while another thread feeds and then calls ``end``. Streaming pointwise work
        this way overlaps upload, work and download. Raises what broke the stream, or WireError when it was
        truncated or stalled; with ``behind_after`` (seconds), UploadBehind when a band is not complete that
        long after it was asked for (the worker is not held by a slow upload)."""
        image = self._image()
        height = image.shape[0]
        row_bytes = image[0].nbytes
        while start < height:
            stop = min(height, start + band_rows)
            with self._arrival:
                give_up = None if behind_after is None else time.monotonic() + behind_after
                while self.error is None and self.filled < stop * row_bytes:
                    if self._ended:
                        raise self._truncated()
                    wait = stall_seconds if give_up is None else give_up - time.monotonic()
                    if wait <= 0 or not self._arrival.wait(wait):
                        if give_up is not None:
                            raise UploadBehind(start)
                        raise self._stalled(stall_seconds)
                if self.error is not None:
                    raise self.error
            band = image[start:stop]
            check_finite(band, "image")
            yield band
            start = stop

    def finish(self):
        """Return (image, mask-or-None) as arrays shaped (H, W, C)."""
        if self.filled != len(self.buffer):
            raise self._truncated()
        h, w = self.header.height, self.header.width
        image = self._image()
        check_finite(image, "image")
        mask = None
        if self.mask_header is not None:
            mask = np.frombuffer(self.buffer, DTYPES[self.mask_header.sample_type], h * w * self.mask_header.channels,
                                 offset=self.image_bytes).reshape(h, w, self.mask_header.channels)
            check_finite(mask, "mask")
        return image, mask


def check_finite(array, what):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise WireError("INVALID_ARGUMENT", "the %s contains NaN or infinite values" % what)


def image_events(array, transfer=None, role="result"):
    """The Reply events that carry one image: its header, then its chunks (pre-encoded frames)."""
    yield schema.Reply(image=header_for(array, transfer, role))
    yield from chunk_frames(array, REPLY_CHUNK_TAG)


class ReplyReader:
    """Collects a reply stream: images and their transfers by role, the summary, progress through a callback.

    ``segments``: name -> uint8 buffer of each shared-memory segment this client made for results; an
    image header naming one is read from it (a view, no copy). Any other name is refused: a client only
    ever reads its own segments."""

    def __init__(self, on_progress=None, segments=None):
        self.images = {}
        self.transfers = {}  # role -> schema.PERCEPTUAL or schema.LINEAR
        self.summary = None
        self.on_progress = on_progress
        self.segments = segments or {}
        self._receiver = None
        self._role = None

    def _from_segment(self, header):
        check_image_header(header, 1 << 62, "returned image")
        segment = header.shared_memory
        buffer = self.segments.get(segment.name)
        size = byte_count(header.width, header.height, header.channels, header.sample_type)
        if buffer is None or segment.size != size or segment.offset + size > len(buffer):
            raise WireError("DATA_LOSS", "the daemon named shared-memory segment %r (%d bytes at %d) for a %d-byte "
                            "image, which is not one this client made for it" % (segment.name[:80], segment.size,
                                                                                 segment.offset, size))
        image = np.frombuffer(buffer, DTYPES[header.sample_type], size // DTYPES[header.sample_type].itemsize,
                              segment.offset)
        return image.reshape(header.height, header.width, header.channels)

    def _close_image(self):
        if self._receiver is not None:
            self.images[self._role], _ = self._receiver.finish()
            self._receiver = None

    def read(self, replies):
        for reply in replies:
            kind = "chunk" if isinstance(reply, Chunk) else reply.WhichOneof("event")
            if kind == "chunk":
                if self._receiver is None:
                    raise WireError("DATA_LOSS", "the daemon sent pixel bytes before an image header")
                self._receiver.feed(reply.data if isinstance(reply, Chunk) else reply.chunk)
            elif kind == "progress":
                if self.on_progress:
                    self.on_progress(reply.progress.fraction, reply.progress.stage)
            elif kind == "image":
                self._close_image()
                self._role = reply.image.role or "result"
                self.transfers[self._role] = reply.image.transfer or schema.PERCEPTUAL
                if reply.image.HasField("shared_memory"):  # its pixels are already here: no chunks follow
                    self.images[self._role] = self._from_segment(reply.image)
                else:
                    self._receiver = Receiver(reply.image, max_pixels=1 << 62)
            elif kind == "summary":
                self._close_image()
                self.summary = reply.summary
        self._close_image()
        if self.summary is None:
            raise WireError("DATA_LOSS", "the daemon's reply ended without a summary: the connection was cut")
        return self
