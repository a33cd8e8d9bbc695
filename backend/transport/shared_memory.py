"""Pixels in POSIX shared memory, for clients on the daemon's machine (Triton's system-shared-memory idea).

Why: streamed over gRPC every pixel is copied several more times on each side (into and out of
gRPC's buffers, through the kernel's loopback), and on two cores those copies cannot hide behind the
work. A local client instead writes the layer once into a segment under /dev/shm and sends only the
setup naming it; the daemon maps it read-only (numpy views, no copy) and writes the result into a
segment the client made for it, which the client then reads in place. The client makes and unlinks
every segment; the daemon creates none, so a call that fails or is cancelled leaves nothing of the
daemon's behind. Linux only (/dev/shm); elsewhere clients stream.

A client killed before it could unlink (while writing its layer, or holding a ``shared_array``)
would leave its segments behind, so leaks heal themselves: every segment's name carries its
creator's PID (and PID namespace), and the daemon sweeps, at start and every few seconds, the
segments of this user whose creator is no longer alive (``sweep_dead_segments``).

Daemon side: ``SharedPixels`` (reads like ``wire.Receiver``). Client side: ``CallSegments``.
Depends on numpy, ``schema`` and ``wire``.
"""

import errno
import mmap
import os
import re
import secrets
import stat

import numpy as np

from . import schema, wire

SEGMENT_DIR = "/dev/shm"
NAME_PREFIX = "semantic-enhance-"
# trailing metadata on a refusal that means "segments cannot work between this client and this daemon"
# (another machine, container or user, or a daemon on a network address): an "auto" client then streams
UNUSABLE_KEY = "semantic-enhance-shared-memory"
_NAME = re.compile(r"(?!\.)[A-Za-z0-9._-]{1,200}")
_SWEEPABLE = re.compile(re.escape(NAME_PREFIX) + r"([0-9a-f]+)-([0-9]+)-[0-9a-f]{32}")


def _pid_namespace():
    """This process's PID namespace (an inode number), so that PIDs in names are only read by their peers."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_dead_segments(directory=None):
    """Unlink the segments of this user whose creating client (same PID namespace) is no longer alive;
    returns their names. Names without a creator PID (other programs', hand-made ones) are never touched."""
    directory = directory or SEGMENT_DIR
    namespace = "%x" % _pid_namespace()
    swept = []
    try:
        names = os.listdir(directory)
    except OSError:
        return swept
    for name in names:
        match = _SWEEPABLE.fullmatch(name)
        if not match or match.group(1) != namespace or _alive(int(match.group(2))):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                os.unlink(path)
                swept.append(name)
        except OSError:
            pass
    return swept
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # map every page at once: one call instead of a fault per page


def available():
    return os.path.isdir(SEGMENT_DIR)


class Unusable(wire.WireError):
    """A refusal that no fix of the request can cure between this client and this daemon."""


# -- daemon side -----------------------------------------------------------------------------------

def _open(segment, expected_bytes, itemsize, what, writable):
    """Open one segment the client named, after every check; returns (descriptor, os.stat_result)."""
    name = segment.name
    if not _NAME.fullmatch(name) or ".." in name:
        raise wire.WireError("INVALID_ARGUMENT", "the %s's shared-memory name %r is not allowed: give the name "
                             "of a segment in %s without slashes (letters, digits, '.', '_', '-'; not starting "
                             "with '.')" % (what, name[:80], SEGMENT_DIR))
    if segment.size != expected_bytes:
        raise wire.WireError("INVALID_ARGUMENT", "the %s's shared-memory segment '%s' is announced as %d bytes, "
                             "but its header describes %d bytes (width x height x channels x sample size)"
                             % (what, name, segment.size, expected_bytes))
    if segment.offset % itemsize:
        raise wire.WireError("INVALID_ARGUMENT", "the %s starts at offset %d of segment '%s', which is not a "
                             "multiple of its sample size (%d bytes)" % (what, segment.offset, name, itemsize))
    # O_NONBLOCK: a FIFO (or device) under that name must not block this thread before the check below
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        descriptor = os.open(os.path.join(SEGMENT_DIR, name), flags)
    except FileNotFoundError:
        raise Unusable("NOT_FOUND", "there is no shared-memory segment '%s' on the daemon's machine: the client "
                       "must create it in %s before the call and keep it until the daemon's first reply; a "
                       "client on another machine or in another container must stream its pixels instead"
                       % (name, SEGMENT_DIR))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise wire.WireError("INVALID_ARGUMENT", "the shared-memory segment '%s' is a symbolic link; the "
                                 "daemon only opens plain segments" % name)
        if error.errno in (errno.EACCES, errno.EPERM):
            raise Unusable("PERMISSION_DENIED", "the daemon may not open the shared-memory segment '%s' (%s): it "
                           "only uses segments of its own user" % (name, error.strerror))
        raise wire.WireError("INVALID_ARGUMENT", "the shared-memory segment '%s' cannot be opened: %s"
                             % (name, error.strerror))
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise wire.WireError("INVALID_ARGUMENT", "'%s' in %s is not a shared-memory segment"
                                 % (name, SEGMENT_DIR))
        if info.st_uid != os.geteuid():
            raise Unusable("PERMISSION_DENIED", "the shared-memory segment '%s' belongs to user %d, not to the "
                           "daemon's user (%d): the daemon only uses its own user's segments"
                           % (name, info.st_uid, os.geteuid()))
        end = segment.offset + segment.size
        if info.st_size < end:
            raise wire.WireError("INVALID_ARGUMENT", "the shared-memory segment '%s' holds %d bytes, but the %s "
                                 "needs %d bytes from offset %d (%d in all)"
                                 % (name, info.st_size, what, segment.size, segment.offset, end))
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor, info


def _map_pixels(segment, expected_bytes, itemsize, what):
    """A read-only uint8 view of exactly the pixels of a segment; returns (view, file identity)."""
    descriptor, info = _open(segment, expected_bytes, itemsize, what, writable=False)
    try:
        buffer = mmap.mmap(descriptor, segment.offset + segment.size, flags=mmap.MAP_SHARED | _POPULATE,
                           prot=mmap.PROT_READ)
    finally:
        os.close(descriptor)
    # never closed explicitly: the mapping goes when the last view of it does (the worker may still hold one)
    return np.frombuffer(buffer, np.uint8, segment.size, segment.offset), (info.st_dev, info.st_ino)


class _ResultSegment:
    """The client's segment for the result, written with pwrite rather than through a mapping: the kernel
    then fills whole pages without zeroing them first, and no room in /dev/shm (or a segment the client
    shrank) is an error of one call instead of a SIGBUS that would end the daemon."""

    def __init__(self, segment, expected_bytes, itemsize):
        descriptor, info = _open(segment, expected_bytes, itemsize, "result", writable=True)
        self.file = os.fdopen(descriptor, "r+b", buffering=0)  # closed when the last user lets go
        self.identity = (info.st_dev, info.st_ino)
        self.segment = segment
        self.filled = 0

    def write(self, data):
        """Write the next bytes of the result, in order."""
        data = memoryview(data).cast("B")
        if self.filled + len(data) > self.segment.size:
            raise wire.WireError("INTERNAL", "the model made more result bytes than the layer has")
        try:
            _write_all(self.file.fileno(), data, self.segment.offset + self.filled)
        except OSError as error:
            raise Unusable("RESOURCE_EXHAUSTED", "the result (%.0f MiB) could not be written into the shared-memory "
                           "segment '%s': %s" % (self.segment.size / 2**20, self.segment.name, error.strerror))
        self.filled += len(data)


class SharedPixels:
    """A request's pixels read straight from the client's segments: read-only views, no copy. Reads like
    ``wire.Receiver`` (``rows``, ``finish``), so the daemon's work does not care how the pixels came;
    ``result`` is the client's segment for the result image, or None when the result is to be streamed."""

    error = None

    def __init__(self, header, mask_header=None, max_pixels=wire.DEFAULT_MAX_PIXELS):
        wire.check_image_header(header, max_pixels)
        mask_header = wire.check_mask_header(header, mask_header)
        self.header = header
        h, w = header.height, header.width
        dtype = wire.DTYPES[header.sample_type]
        view, identity = _map_pixels(header.shared_memory, wire.byte_count(w, h, header.channels, header.sample_type),
                                     dtype.itemsize, "image")
        self.image = view.view(dtype).reshape(h, w, header.channels)
        originals = {identity}
        self.mask = None
        if mask_header is not None:
            if not mask_header.HasField("shared_memory"):
                raise wire.WireError("INVALID_ARGUMENT", "the image is in shared memory, so its mask must be too: no "
                                     "chunks follow a shared-memory image")
            mask_dtype = wire.DTYPES[mask_header.sample_type]
            view, identity = _map_pixels(mask_header.shared_memory, wire.byte_count(w, h, mask_header.channels,
                                                                                    mask_header.sample_type),
                                         mask_dtype.itemsize, "mask")
            self.mask = view.view(mask_dtype).reshape(h, w, mask_header.channels)
            originals.add(identity)
        self.result = None  # the client's segment for the result
        if header.HasField("result_shared_memory"):
            if header.result_shared_memory.name == header.shared_memory.name:
                raise self._over_original()
            self.result = _ResultSegment(header.result_shared_memory, self.image.nbytes, dtype.itemsize)
            if self.result.identity in originals:  # the same file under another name
                raise self._over_original()

    def _over_original(self):
        return wire.WireError("INVALID_ARGUMENT", "the result segment '%s' is the layer's own segment: the daemon "
                              "never writes over the original; make another segment for the result"
                              % self.header.result_shared_memory.name)

    def rows(self, band_rows, start=0, **waiting):
        """The image in bands of at most ``band_rows`` rows from row ``start`` (all there already: nothing
        to wait for, so ``waiting`` options do not apply)."""
        for start in range(start, self.header.height, band_rows):
            band = self.image[start:start + band_rows]
            wire.check_finite(band, "image")
            yield band

    def finish(self):
        wire.check_finite(self.image, "image")
        if self.mask is not None:
            wire.check_finite(self.mask, "mask")
        return self.image, self.mask

    def put_result(self, pixels):
        """Write a whole result into the client's segment when it is exactly the segment's size."""
        data = wire.byte_view(pixels)
        if self.result is None or self.result.filled or len(data) != self.result.segment.size:
            return False
        self.result.write(data)
        return True

    def put_result_rows(self, rows):
        """Write the next rows of a streamed result, in order."""
        self.result.write(wire.byte_view(rows))

    def result_header(self, like):
        """The reply's header for the result in the client's segment: ``like``'s format, no chunks follow."""
        if self.result.filled != self.result.segment.size:
            raise wire.WireError("INTERNAL", "the model made %d of the result's %d bytes"
                                 % (self.result.filled, self.result.segment.size))
        header = schema.ImageHeader()
        header.CopyFrom(like)
        header.ClearField("result_shared_memory")
        header.role = header.role or "result"
        header.shared_memory.CopyFrom(self.header.result_shared_memory)
        return header


# -- client side -----------------------------------------------------------------------------------

def _create_segment():
    """A new, empty segment (mode 0600, a random name that cannot be guessed): (name, path, descriptor)."""
    name = "%s%x-%d-%s" % (NAME_PREFIX, _pid_namespace(), os.getpid(), secrets.token_hex(16))  # see sweep_dead_segments
    path = os.path.join(SEGMENT_DIR, name)
    return name, path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _write_all(descriptor, data, offset=0):
    """pwrite every byte of ``data`` at ``offset`` (pwrite may write less than asked)."""
    done = 0
    while done < len(data):
        done += os.pwrite(descriptor, data[done:], offset + done)


def _new_segment(size):
    """A new segment of ``size`` bytes, mapped here; returns (name, path, writable uint8 view)."""
    name, path, descriptor = _create_segment()
    try:
        os.ftruncate(descriptor, size)
        buffer = mmap.mmap(descriptor, max(size, 1))
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(descriptor)
    return name, path, np.frombuffer(buffer, np.uint8, size)


class KeptSegments:
    """Segments a client keeps across calls, as arrays it fills itself: an editor reads its layer's pixels
    straight into one, and every call on that array names it instead of copying the pixels again (Triton's
    registered regions). The daemon still maps them read-only and never writes them. Unlinked by
    ``release`` or ``close``."""

    def __init__(self):
        self._kept = {}  # name -> (path, uint8 view of the whole segment)

    def array(self, shape, dtype):
        dtype = np.dtype(dtype).newbyteorder("<")
        if dtype not in wire.SAMPLE_TYPES:
            raise ValueError("pixels must be uint8, uint16 or float32, not %s" % dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        name, path, raw = _new_segment(size)
        self._kept[name] = (path, raw)
        return raw.view(dtype).reshape(shape)

    def find(self, array):
        """The SharedMemory message naming where ``array``'s pixels lie, if in a kept segment, else None."""
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous or array.dtype.byteorder == ">":
            return None
        start = array.__array_interface__["data"][0]
        for name, (_, raw) in self._kept.items():
            base = raw.__array_interface__["data"][0]
            if base <= start and start + array.nbytes <= base + raw.nbytes:
                return schema.SharedMemory(name=name, offset=start - base, size=array.nbytes)
        return None

    def release(self, array):
        """Unlink the kept segment holding ``array`` (the array itself stays valid until it is dropped)."""
        found = self.find(array)
        if found is None:
            raise ValueError("this array is not in a segment this client keeps")
        path, _ = self._kept.pop(found.name)
        _unlink(path)

    def close(self):
        while self._kept:
            _unlink(self._kept.popitem()[1][0])


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class CallSegments:
    """The segments of one call, made by the client (mode 0600, random names that cannot be guessed) and
    unlinked by it: as soon as the daemon's first reply shows that it has opened them all, and in any
    case when the call ends, whether it succeeded, failed or was cancelled. Mappings outlive the names,
    so a result read from a segment stays valid. Raises OSError when /dev/shm has no room."""

    def __init__(self):
        self._paths = []
        self.results = {}  # name -> writable uint8 view of a result segment, for wire.ReplyReader

    def put(self, array):
        """A new segment holding the array's bytes; returns the SharedMemory message naming it."""
        data = wire.byte_view(array)
        name, path, descriptor = _create_segment()
        self._paths.append(path)
        try:  # a write, not a mapping: no room in /dev/shm is then an error here, not a SIGBUS
            _write_all(descriptor, data)
        finally:
            os.close(descriptor)
        return schema.SharedMemory(name=name, size=len(data))

    def for_result(self, size):
        """A new (empty, sparse) segment of ``size`` bytes for the daemon to write the result into, mapped
        here so that the result can be read in place once the daemon has written it."""
        name, path, self.results[name] = _new_segment(size)
        self._paths.append(path)
        return schema.SharedMemory(name=name, size=size)

    def unlink(self):
        while self._paths:
            _unlink(self._paths.pop())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unlink()
