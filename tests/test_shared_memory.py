"""Shared memory between a local client and a real daemon process (loopback gRPC carries only headers)."""

import mmap
import os
import time

import grpc
import numpy as np
import pytest

from backend.client import BackendError, Client, embedded
from backend.imaging import filters as bank, pixels
from backend.transport import schema, shared_memory as shm, wire
from test_daemon import STACK, four_concurrent_clients, raw_call, status_of

pytestmark = pytest.mark.skipif(not shm.available(), reason="no %s on this system" % shm.SEGMENT_DIR)


def in_process(image, stack=STACK, transfer=pixels.PERCEPTUAL):
    layer = pixels.decode(image, transfer)
    return pixels.encode(bank.apply_stack_tiled(layer.rgb, bank.parse_stack(stack)), layer)


def our_segments():
    return {name for name in os.listdir(shm.SEGMENT_DIR) if name.startswith(shm.NAME_PREFIX)}


def daemon_mappings(daemon):
    """The segments the daemon process still has mapped (unlinked ones show as '(deleted)')."""
    with open("/proc/%d/maps" % daemon.process.pid) as maps:
        return [line for line in maps if shm.NAME_PREFIX in line]


def wait_until(condition, seconds=20):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()


def came_from_a_segment(array):
    while array is not None and not isinstance(array, mmap.mmap):
        array = array.base if isinstance(array, np.ndarray) else getattr(array, "obj", None)
    return isinstance(array, mmap.mmap)


@pytest.fixture
def no_leftovers(daemon):
    """Every test here must leave no segment of ours in /dev/shm, and none mapped in the daemon."""
    before = our_segments()
    yield
    assert our_segments() - before == set()
    assert wait_until(lambda: not daemon_mappings(daemon)), daemon_mappings(daemon)


def layer(kind, height=123, width=211):
    rng = np.random.default_rng(7)
    if kind == "RGBA u8":
        return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if kind == "RGB u16":
        return rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
    return rng.random((height, width, 3), dtype=np.float32) * 1.2  # f32 may exceed 1 (scene-referred)


@pytest.mark.parametrize("kind", ["RGBA u8", "RGB u16", "RGB f32"])
def test_shared_memory_result_is_the_streamed_and_the_in_process_result(daemon, no_leftovers, kind):
    image = layer(kind)
    original = image.copy()
    transfer = schema.LINEAR if kind == "RGB f32" else None
    shared = daemon.client(shared_memory=True).filters(image, STACK, transfer=transfer)
    streamed = daemon.client(shared_memory=False).filters(image, STACK, transfer=transfer)
    expected = in_process(image, transfer=pixels.LINEAR if transfer else pixels.PERCEPTUAL)
    assert came_from_a_segment(shared.image) and not came_from_a_segment(streamed.image)
    assert shared.image.dtype == image.dtype and shared.image.shape == image.shape
    np.testing.assert_array_equal(shared.image, streamed.image)
    np.testing.assert_array_equal(shared.image, expected)
    np.testing.assert_array_equal(image, original)  # the layer handed over is never written
    assert shared.summary.filter_stack == streamed.summary.filter_stack


def test_a_selection_in_shared_memory_gives_the_streamed_result(daemon, no_leftovers, photo):
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[:, 200:] = np.linspace(0, 1, photo.shape[1] - 200, dtype=np.float32)
    shared = daemon.client(shared_memory=True).filters(photo, STACK, mask=mask)
    streamed = daemon.client(shared_memory=False).filters(photo, STACK, mask=mask)
    assert came_from_a_segment(shared.image)
    np.testing.assert_array_equal(shared.image, streamed.image)
    np.testing.assert_array_equal(shared.image[:, :200], photo[:, :200])


def test_the_daemon_says_it_takes_shared_memory_and_auto_uses_it(daemon, no_leftovers, photo):
    client = daemon.client()
    assert client.models().shared_memory
    assert came_from_a_segment(client.filters(photo, STACK).image)


def setup_naming(image, image_segment, result_segment=None):
    header = wire.header_for(image)
    header.shared_memory.CopyFrom(image_segment)
    if result_segment is not None:
        header.result_shared_memory.CopyFrom(result_segment)
    setup = schema.FiltersSetup(image=header)
    setup.stack.filters.add(name="exposure", values=[0.3])
    return schema.FiltersRequest(setup=setup)


def test_the_layer_s_segment_stays_as_it_was_and_the_result_lands_in_its_own(daemon, no_leftovers, photo):
    """A plain protobuf client that keeps its segments past the call: only headers travel over gRPC."""
    with shm.CallSegments() as segments:
        layer_segment = segments.put(photo)
        result_segment = segments.for_result(photo.nbytes)
        replies = raw_call(daemon, "ApplyFilters", [setup_naming(photo, layer_segment, result_segment)])
        kinds = [reply.WhichOneof("event") for reply in replies]
        assert "chunk" not in kinds and kinds.count("image") == 1 and kinds[-1] == "summary"
        header = replies[kinds.index("image")].image
        assert header.shared_memory == result_segment and header.role == "result"
        assert not header.HasField("result_shared_memory")
        with open(os.path.join(shm.SEGMENT_DIR, layer_segment.name), "rb") as handle:
            assert handle.read() == photo.tobytes()
        result = segments.results[result_segment.name].reshape(photo.shape)
        np.testing.assert_array_equal(result, in_process(photo, {"filters": [{"name": "exposure", "values": [0.3]}]}))


def test_segments_of_the_wrong_size_are_refused_with_both_sizes(daemon, no_leftovers):
    image = np.zeros((10, 10, 3), np.uint8)
    with shm.CallSegments() as segments:
        short = segments.put(np.zeros(100, np.uint8))
        short.size = 300  # the header's byte count, but the segment holds only 100
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [setup_naming(image, short)]))
        assert got.name == "INVALID_ARGUMENT" and "holds 100 bytes, but the image needs 300 bytes" in details
        announced = segments.put(np.zeros(100, np.uint8))
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [setup_naming(image, announced)]))
        assert got.name == "INVALID_ARGUMENT" and "announced as 100 bytes, but its header describes 300" in details
        whole = segments.put(image)
        result = segments.put(np.zeros(299, np.uint8))
        result.size = 300
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [setup_naming(image, whole, result)]))
        assert got.name == "INVALID_ARGUMENT" and "holds 299 bytes, but the result needs 300" in details


def test_missing_segments_and_names_that_leave_dev_shm_are_refused(daemon, no_leftovers, tmp_path):
    image = np.zeros((10, 10, 3), np.uint8)
    missing = schema.SharedMemory(name=shm.NAME_PREFIX + "nobody-made-this", size=300)
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(daemon, "ApplyFilters", [setup_naming(image, missing)])
    assert caught.value.code().name == "NOT_FOUND" and "no shared-memory segment" in caught.value.details()
    assert shm.UNUSABLE_KEY in dict(caught.value.trailing_metadata())  # "auto" clients then stream
    for name in ("../../etc/passwd", "a/b", "..", ".hidden", ""):
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters",
                                                  [setup_naming(image, schema.SharedMemory(name=name, size=300))]))
        assert got.name == "INVALID_ARGUMENT" and "is not allowed" in details, name
    link = os.path.join(shm.SEGMENT_DIR, shm.NAME_PREFIX + "a-link")
    target = tmp_path / "pixels"
    target.write_bytes(bytes(300))
    os.symlink(target, link)
    try:
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters",
                                                  [setup_naming(image, schema.SharedMemory(name=os.path.basename(link),
                                                                                           size=300))]))
    finally:
        os.unlink(link)
    assert got.name == "INVALID_ARGUMENT" and "symbolic link" in details


def test_the_result_never_goes_into_the_layer_s_own_segment(daemon, no_leftovers):
    image = np.full((10, 10, 3), 77, np.uint8)
    with shm.CallSegments() as segments:
        layer_segment = segments.put(image)
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters",
                                                  [setup_naming(image, layer_segment, layer_segment)]))
        assert got.name == "INVALID_ARGUMENT" and "never writes over the original" in details
        other_name = shm.NAME_PREFIX + "hard-link-" + os.urandom(8).hex()
        os.link(os.path.join(shm.SEGMENT_DIR, layer_segment.name), os.path.join(shm.SEGMENT_DIR, other_name))
        segments._paths.append(os.path.join(shm.SEGMENT_DIR, other_name))
        same_file = schema.SharedMemory(name=other_name, size=300)
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters",
                                                  [setup_naming(image, layer_segment, same_file)]))
        assert got.name == "INVALID_ARGUMENT" and "never writes over the original" in details
        with open(os.path.join(shm.SEGMENT_DIR, layer_segment.name), "rb") as handle:
            assert handle.read() == image.tobytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a segment of another user needs root")
def test_a_segment_of_another_user_is_refused(daemon, no_leftovers):
    image = np.zeros((10, 10, 3), np.uint8)
    with shm.CallSegments() as segments:
        foreign = segments.put(image)
        os.chown(os.path.join(shm.SEGMENT_DIR, foreign.name), 65534, 65534)
        got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [setup_naming(image, foreign)]))
    assert got.name == "PERMISSION_DENIED" and "belongs to user 65534" in details


def test_errors_and_a_cancel_leave_no_segment_behind(daemon, no_leftovers):
    client = daemon.client(shared_memory=True)
    with pytest.raises(BackendError, match="unknown filter 'blur'"):
        client.filters(np.zeros((8, 8, 3), np.uint8), {"filters": [{"name": "blur", "values": [1]}]})
    nan = np.full((8, 8, 3), 0.5, np.float32)
    nan[2, 2, 2] = np.nan
    with pytest.raises(BackendError, match="NaN") as caught:  # found by the worker, after the first reply
        client.filters(nan, STACK)
    assert caught.value.code == "INVALID_ARGUMENT"

    class GoAway(Exception):
        pass

    def cancel_when_applying(fraction, stage):
        if stage == "applying":
            raise GoAway()
    big = np.zeros((3000, 4000, 3), np.uint8)
    slow = {"filters": [{"name": "tone", "values": [1, 2, 1, 1, 1, 1, 1, 0.5]}]}
    with pytest.raises(GoAway):
        client.filters(big, slow, on_progress=cancel_when_applying)
    assert client.filters(np.zeros((4, 4, 3), np.uint8), STACK).image.shape == (4, 4, 3)  # still serving


def test_four_concurrent_shared_memory_clients_get_their_own_results(daemon, no_leftovers, photo):
    images, stacks, results = four_concurrent_clients(daemon, photo, shared_memory=True)
    for i in range(4):
        assert came_from_a_segment(results[i])
        np.testing.assert_array_equal(results[i], in_process(images[i], stacks[i]))


def test_auto_streams_when_the_daemon_cannot_see_the_segments(daemon, no_leftovers, photo, tmp_path, monkeypatch):
    """A daemon in another container sees another /dev/shm: "auto" falls back to streaming, True says why."""
    monkeypatch.setattr(shm, "SEGMENT_DIR", str(tmp_path))  # this client's segments go where the daemon never looks
    with pytest.raises(BackendError, match="no shared-memory segment") as caught:
        daemon.client(shared_memory=True).filters(photo, STACK)
    assert caught.value.code == "NOT_FOUND"
    client = daemon.client()
    first = client.filters(photo, STACK).image
    assert not came_from_a_segment(first) and client._use_segments is False
    np.testing.assert_array_equal(first, in_process(photo))
    assert os.listdir(tmp_path) == []


def test_a_daemon_on_a_network_address_refuses_shared_memory(photo, certificate):
    cert, key = certificate  # a network address needs TLS
    server, client = embedded(host="0.0.0.0", allow_remote=True, tls_cert=cert, tls_key=key)
    try:
        assert not client.models().shared_memory
        token = dict(client.metadata)["authorization"][len("Bearer "):]
        with pytest.raises(BackendError, match="takes no pixels in shared memory") as caught:
            Client(client.address, token=token, shared_memory=True, tls_ca=cert).filters(photo, STACK)
        assert caught.value.code == "FAILED_PRECONDITION"
        local = Client("127.0.0.1:" + client.address.rsplit(":", 1)[1], token=token, tls_ca=cert)  # "auto" streams
        assert not came_from_a_segment(local.filters(photo, STACK).image)
    finally:
        server.stop(1)


def test_a_kept_array_is_named_not_copied_and_freed_by_release(daemon, no_leftovers):
    """shared_array: the editor reads its pixels straight into a kept segment; calls name it (no new
    segment for the layer), the daemon never writes it, and release/close unlink it."""
    client = daemon.client(shared_memory=True)
    image = client.shared_array((64, 96, 4), np.uint8)
    assert came_from_a_segment(image)
    image[...] = layer("RGBA u8", 64, 96)
    original = image.copy()
    kept = our_segments()
    made = []
    real_put = shm.CallSegments.put
    shm.CallSegments.put = lambda self, array: made.append(array) or real_put(self, array)
    try:
        whole = client.filters(image, STACK)
        band = client.filters(image[16:40], STACK)  # a band of rows: the same segment at an offset
    finally:
        shm.CallSegments.put = real_put
    assert made == []
    np.testing.assert_array_equal(whole.image, in_process(original))
    np.testing.assert_array_equal(band.image, in_process(original[16:40]))
    np.testing.assert_array_equal(image, original)
    client.release(image)
    assert not (kept & our_segments())
    other = client.shared_array((8, 8, 3), np.uint16)
    assert came_from_a_segment(other)
    client.close()  # close frees what is still kept (the no_leftovers fixture checks)


def test_shared_array_is_a_plain_array_when_pixels_stream(daemon):
    client = daemon.client(shared_memory=False)
    array = client.shared_array((4, 5, 3), np.float32)
    assert not came_from_a_segment(array) and array.shape == (4, 5, 3) and array.dtype == np.float32
    client.release(array)  # nothing to free: no error
    client.close()
