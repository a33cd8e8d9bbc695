"""Integration: a real `semantic-enhance serve` process on loopback, called over real gRPC."""

import os
import signal
import stat
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import torch
from google.protobuf import json_format

from backend.client import BackendError, Client
from backend.imaging import filters as bank
from backend.transport import schema, wire
from conftest import REPO, start_daemon, stop_daemon

STACK = {"filters": [{"name": "exposure", "values": [0.5]}, {"name": "contrast", "values": [0.4]},
                     {"name": "saturation", "values": [0.6]}]}


def expected_u8(image, stack):
    rgb = torch.from_numpy(image[:, :, :3].astype(np.float32) / 255)
    out = bank.apply_stack(rgb.permute(2, 0, 1), bank.parse_stack(stack)).permute(1, 2, 0).contiguous()
    return np.clip(out.numpy() * 255 + 0.5, 0, 255).astype(np.uint8)


def raw_call(daemon, rpc, messages, token=True):
    """Send hand-made request messages (to build malformed streams the client API never sends)."""
    from backend.transport.server import CHANNEL_OPTIONS

    request_class, reply_class, _ = schema.RPCS[rpc]
    channel = grpc.insecure_channel(daemon.address, options=CHANNEL_OPTIONS)
    call = channel.stream_stream(schema.method_path(rpc), request_class.SerializeToString, reply_class.FromString)
    metadata = (("authorization", "Bearer " + open(daemon.token_file).read().strip()),) if token else ()
    try:
        return list(call(iter(messages), metadata=metadata, timeout=30))
    finally:
        channel.close()


@pytest.fixture(params=[False, True], ids=["streamed", "shared-memory"])
def client(daemon, request):
    """Both ways of handing pixels over: chunks (any client) and shared memory (a client on this machine)."""
    return daemon.client(shared_memory=request.param)


def status_of(callable_):
    with pytest.raises(grpc.RpcError) as caught:
        callable_()
    return caught.value.code(), caught.value.details()


def filters_setup(header, mask=None):
    setup = schema.FiltersSetup(image=header, mask=mask)
    setup.stack.filters.add(name="exposure", values=[0.3])
    return schema.FiltersRequest(setup=setup)


def test_filters_round_trip_matches_in_process_and_keeps_alpha(client, photo):
    rgba = np.dstack([photo, np.arange(photo.shape[0] * photo.shape[1], dtype=np.uint32).reshape(photo.shape[:2]) % 251])
    rgba = rgba.astype(np.uint8)
    events = []
    result = client.filters(rgba, STACK, on_progress=lambda f, s: events.append((f, s)))
    assert result.image.shape == rgba.shape and result.image.dtype == np.uint8
    np.testing.assert_array_equal(result.image[:, :, 3], rgba[:, :, 3])
    assert np.abs(result.image[:, :, :3].astype(int) - expected_u8(rgba, STACK)).max() <= 1
    assert events[0][1] == "queued" and events[-1][0] == pytest.approx(0.95, abs=0.01)
    assert [f.name for f in result.summary.filter_stack.filters] == ["exposure", "contrast", "saturation"]


def test_16bit_linear_and_float_layers_keep_their_format(client):
    ramp16 = np.tile(np.arange(0, 65536, 16, dtype=np.uint16)[None, :, None], (8, 1, 3))
    identity = {"filters": [{"name": "exposure", "values": [0.0]}]}
    out = client.filters(ramp16, identity).image
    assert out.dtype == np.uint16 and np.abs(out.astype(int) - ramp16).max() <= 1
    linear = np.full((4, 4, 3), 0.18, np.float32)
    out = client.filters(linear, {"filters": [{"name": "exposure", "values": [1.0]}]}, transfer=schema.LINEAR).image
    assert out.dtype == np.float32
    # exposure doubles the sRGB-encoded value (the filter bank works on encoded values, as in the papers)
    from backend.imaging.color import linear_to_srgb, srgb_to_linear
    expected = srgb_to_linear(linear_to_srgb(torch.tensor(0.18)) * 2).item()
    assert out[0, 0, 0] == pytest.approx(expected, abs=1e-5)


def test_selection_mask_limits_the_filters(client, photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[:, 256:] = 255
    out = client.filters(photo, STACK, mask=mask).image
    np.testing.assert_array_equal(out[:, :256], photo[:, :256])
    assert np.abs(out[:, 256:].astype(int) - photo[:, 256:]).mean() > 10


def test_list_models_shows_every_paper_and_what_is_installed(daemon):
    reply = daemon.client().models()
    ids = {m.id: m for m in reply.models}
    assert {"filters", "sa-adjust", "fcn-stylize", "enhancegan", "progressive"} <= set(ids)
    assert ids["filters"].installed and reply.device == "cpu"


@pytest.mark.parametrize("header, code, words", [
    (schema.ImageHeader(width=0, height=0, channels=3, sample_type=schema.U8), "INVALID_ARGUMENT", "empty"),
    (schema.ImageHeader(width=100000, height=100000, channels=3, sample_type=schema.U8), "RESOURCE_EXHAUSTED",
     "megapixels"),
    (schema.ImageHeader(width=4, height=4, channels=7, sample_type=schema.U8), "INVALID_ARGUMENT", "channels"),
])
def test_impossible_headers(daemon, header, code, words):
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [filters_setup(header)]))
    assert got.name == code and words in details


def test_truncated_and_oversized_uploads(daemon):
    header = schema.ImageHeader(width=100, height=100, channels=3, sample_type=schema.U8)
    short = [filters_setup(header), schema.FiltersRequest(chunk=b"\0" * 29999)]
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", short))
    assert got.name == "INVALID_ARGUMENT" and "truncated" in details
    long = [filters_setup(header), schema.FiltersRequest(chunk=b"\0" * 30001)]
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", long))
    assert got.name == "INVALID_ARGUMENT" and "more pixel bytes" in details
    extra = [filters_setup(header), schema.FiltersRequest(chunk=b"\0" * 30000), schema.FiltersRequest(chunk=b"\0")]
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", extra))  # after every row was streamed back
    assert got.name == "INVALID_ARGUMENT" and "more pixel bytes" in details
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [schema.FiltersRequest(chunk=b"x")]))
    assert got.name == "INVALID_ARGUMENT" and "first message" in details


def test_nan_in_a_float_image_and_a_mask_of_the_wrong_size(client):
    image = np.full((8, 8, 3), 0.5, np.float32)
    image[3, 3, 1] = np.nan
    with pytest.raises(BackendError, match="NaN") as caught:
        client.filters(image, STACK)
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(BackendError, match="mask is 4 x 8 pixels but the image is 8 x 8"):
        client.filters(np.zeros((8, 8, 3), np.uint8), STACK, mask=np.ones((8, 4), np.uint8))


def test_unknown_model_unknown_filter_and_models_not_installed(daemon, photo):
    client = daemon.client()
    with pytest.raises(BackendError, match="unknown model 'nope'") as caught:
        client.adjust(photo, style="x", model="nope")
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(BackendError, match="unknown filter 'blur'"):
        client.filters(photo, {"filters": [{"name": "blur", "values": [1]}]})
    from backend import models
    for call, model_id in [(lambda: client.enhance(photo), "enhancegan"), (lambda: client.crop(photo), "enhancegan"),
                           (lambda: client.progressive(photo), "progressive"), (lambda: client.score(photo), "critic")]:
        if models.get(model_id).installed():
            continue
        with pytest.raises(BackendError, match="model '%s' is not installed" % model_id) as caught:
            call()
        assert caught.value.code == "FAILED_PRECONDITION"


def test_missing_and_wrong_tokens_are_refused(daemon, photo):
    got, details = status_of(lambda: raw_call(daemon, "ApplyFilters", [filters_setup(wire.header_for(photo))], token=False))
    assert got == grpc.StatusCode.UNAUTHENTICATED and "no token" in details
    with pytest.raises(BackendError, match="token is wrong") as caught:
        Client(daemon.address, token="not-the-token").models()
    assert caught.value.code == "UNAUTHENTICATED"


def test_health_and_reflection_are_on(daemon):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(daemon.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=schema.SERVICE))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in next(replies).list_services_response.service}
    assert schema.SERVICE in names and "grpc.health.v1.Health" in names


def four_concurrent_clients(daemon, photo, shared_memory):
    """Four clients at once, each its own layer and stack: returns (images, stacks, result images)."""
    stacks = [{"filters": [{"name": "exposure", "values": [e]}]} for e in (-1.0, -0.3, 0.3, 1.0)]
    images = [np.ascontiguousarray(np.roll(photo, 37 * i, axis=1)) for i in range(4)]
    results = [None] * 4

    def run(i):
        results[i] = daemon.client(shared_memory=shared_memory).filters(images[i], stacks[i]).image

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return images, stacks, results


def test_four_concurrent_clients_get_their_own_results(daemon, photo):
    images, stacks, results = four_concurrent_clients(daemon, photo, shared_memory=False)  # shm: test_shared_memory
    for i in range(4):
        assert np.abs(results[i].astype(int) - expected_u8(images[i], stacks[i])).max() <= 1


def test_the_daemon_still_serves_after_all_that(daemon, photo):
    assert daemon.client().filters(photo, STACK).image.shape == photo.shape


def test_filtered_rows_come_back_while_the_upload_is_still_going(daemon, photo):
    """Pointwise filters stream: the client holds back the second half of its upload until the first
    result rows have arrived, which only works if the daemon overlaps upload, work and download."""
    image = np.ascontiguousarray(np.tile(photo, (8, 4, 1)))
    first_rows_back, early = threading.Event(), []
    frames = list(wire.chunk_frames(image, wire.REQUEST_CHUNK_TAG, chunk_bytes=64 << 10))
    setup = schema.FiltersSetup(image=wire.header_for(image))
    json_format.ParseDict(STACK, setup.stack)

    def upload():
        yield schema.FiltersRequest(setup=setup).SerializeToString()
        yield from frames[:len(frames) // 2]
        early.append(first_rows_back.wait(30))
        yield from frames[len(frames) // 2:]
    client = daemon.client()
    call = client._call("ApplyFilters")(upload(), metadata=client.metadata, timeout=60)
    reader = wire.ReplyReader()

    def replies():
        for reply in call:
            if isinstance(reply, wire.Chunk):
                first_rows_back.set()
            yield reply
    reader.read(replies())
    assert early == [True]
    from backend.imaging import pixels
    layer = pixels.decode(image)
    in_process = pixels.encode(bank.apply_stack_tiled(layer.rgb, bank.parse_stack(STACK)), layer)
    np.testing.assert_array_equal(reader.images["result"], in_process)


def test_cancelling_stops_the_job_and_frees_the_worker():
    """In-process daemon so the test can see its worker; the client goes away after the first progress."""
    from backend.client import embedded

    server, client = embedded()
    try:
        big = np.zeros((3000, 4000, 3), np.uint8)
        setup = schema.FiltersSetup(image=wire.header_for(big))
        setup.stack.filters.add(name="tone", values=[1, 2, 1, 1, 1, 1, 1, 0.5])
        call = client._call("ApplyFilters")(wire.request_frames(schema.FiltersRequest, setup, big),
                                            metadata=client.metadata)
        for reply in call:  # result rows stream back while the upload goes on: skip their chunks
            if isinstance(reply, wire.Chunk):
                continue
            if reply.WhichOneof("event") == "progress" and reply.progress.stage == "applying":
                call.cancel()
                break
        queue = server.service.queue
        import time
        deadline = time.time() + 20
        while queue.current is not None and time.time() < deadline:
            time.sleep(0.05)
        assert queue.current is None
        assert client.filters(np.zeros((4, 4, 3), np.uint8), STACK).image.shape == (4, 4, 3)
    finally:
        server.stop(1)


def test_unix_socket_is_private_and_sigterm_shuts_down_cleanly(tmp_path, photo):
    sock = str(tmp_path / "se.sock")
    running = start_daemon(tmp_path, "--unix", sock)
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(running.token_file).st_mode) == 0o600
        assert running.client().filters(photo, STACK).image.shape == photo.shape
    finally:
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
    assert not os.path.exists(sock)


def test_a_public_bind_is_refused_unless_allowed(tmp_path):
    out = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--host", "0.0.0.0", "--port", "0",
                          "--token-file", str(tmp_path / "t")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "not a loopback address" in out.stderr
