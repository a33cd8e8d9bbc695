"""Fault injection against a real daemon process on loopback: what an attacker or a careless user does.

One test (or a few) per item of the hardening issue; the probes that passed before live in
test_daemon.py and test_shared_memory.py and keep running there. Every refusal is checked for its
gRPC status code and its sentence.
"""

import os
import socket
import stat
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from backend.client import BackendError, Client
from backend.transport import auth, schema, wire
from backend.transport import shared_memory as shm
from backend.transport.channel import CHANNEL_OPTIONS
from conftest import REPO, start_daemon, stop_daemon
from test_daemon import STACK, raw_call, status_of

PYTHON = [sys.executable, "-m", "backend.cli"]


def serve(tmp_path, *extra, timeout=60):
    """Run `serve` expecting it to refuse: returns (exit code, everything it printed)."""
    out = subprocess.run(PYTHON + ["serve", "--device", "cpu", *extra], cwd=REPO, capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config")))
    return out.returncode, out.stdout + out.stderr


def token_metadata(daemon):
    return (("authorization", "Bearer " + open(daemon.token_file).read().strip()),)


class HeldStream:
    """A stream that sends ``messages`` and then holds the call open, sending nothing, until released."""

    def __init__(self, daemon, rpc, messages, timeout=60):
        request_class, reply_class, _ = schema.RPCS[rpc]
        self.release = threading.Event()
        self.channel = grpc.insecure_channel(daemon.address, options=CHANNEL_OPTIONS)
        call = self.channel.stream_stream(schema.method_path(rpc), wire.serialize,
                                          wire.frame_decoder(reply_class, wire.REPLY_CHUNK_TAG))

        def requests():
            yield from messages
            self.release.wait(timeout)
        self.call = call(requests(), metadata=token_metadata(daemon), timeout=timeout)
        self.replies, self.error, self.finished_at = [], None, None
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self):
        try:
            for reply in self.call:
                self.replies.append(reply)
        except grpc.RpcError as error:
            self.error = error
        self.finished_at = time.monotonic()

    def close(self):
        self.release.set()
        self.call.cancel()
        self.channel.close()


def adjust_setup(image_header, mask_header=None, style="foreground-pop-out"):
    return schema.AdjustRequest(setup=schema.AdjustSetup(image=image_header, mask=mask_header, model="sa-adjust",
                                                         style=style)).SerializeToString()


def filters_setup(image_header, stack=STACK, mask_header=None):
    setup = schema.FiltersSetup(image=image_header, mask=mask_header)
    json_format.ParseDict(stack, setup.stack)
    return schema.FiltersRequest(setup=setup).SerializeToString()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """A daemon that gives up on a silent upload after 2 s (the default is 60) and looks for dead clients'
    shared-memory segments every 0.5 s (the default is 10)."""
    running = start_daemon(tmp_path_factory.mktemp("quick"), "--stall-seconds", "2", "--sweep-seconds", "0.5")
    yield running
    stop_daemon(running)


# -- 1. authentication cannot fail open ------------------------------------------------------------

@pytest.mark.slow
def test_1_an_empty_or_short_token_file_stops_the_daemon_from_starting(tmp_path):
    token_file = tmp_path / "token"
    for content in ("", "\n", "abc\n"):
        token_file.write_text(content)
        token_file.chmod(0o600)
        code, output = serve(tmp_path, "--port", "0", "--token-file", str(token_file))
        assert code == 2 and "fewer than the %d of a token" % auth.TOKEN_CHARS in output, output
        assert "listening" not in output and token_file.read_text() == content  # nothing replaced either


def test_1_the_token_file_is_made_atomically_private_and_complete(tmp_path):
    running = start_daemon(tmp_path)
    try:
        path = running.token_file
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(open(path).read().strip()) == auth.TOKEN_CHARS
        assert os.listdir(os.path.dirname(path)) == ["token"]  # no temporary file left beside it
    finally:
        stop_daemon(running)


def test_1_a_token_file_others_can_read_is_warned_about(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(auth.new_token() + "\n")
    token_file.chmod(0o644)
    process = subprocess.Popen(PYTHON + ["serve", "--port", "0", "--device", "cpu", "--token-file", str(token_file)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "listening on" in line:
                break
        assert any("readable by other users (mode 0644)" in line and "chmod 600" in line for line in lines), lines
    finally:
        process.terminate()
        process.wait(20)


def test_1_an_empty_token_is_never_sent_nor_accepted_and_refusals_name_no_path(daemon):
    client = Client(daemon.address, token_file=str(daemon.config_home) + "/nonexistent")
    assert client.metadata == ()  # no token found: no authorization header at all, not "Bearer "
    with pytest.raises(BackendError, match="no token") as caught:
        client.models()
    assert caught.value.code == "UNAUTHENTICATED"
    for value in ("Bearer ", "Bearer", "", "Bearer  "):
        with grpc.insecure_channel(daemon.address) as channel:
            call = channel.unary_unary(schema.method_path("ListModels"), schema.ListModelsRequest.SerializeToString,
                                       schema.ListModelsReply.FromString)
            with pytest.raises(grpc.RpcError) as refused:
                call(schema.ListModelsRequest(), metadata=(("authorization", value),), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        details = refused.value.details()
        assert "no token" in details and daemon.config_home not in details and "/" not in details.replace(
            "'authorization: Bearer <token>'", "")


# -- 4. a port in use is an error in words ---------------------------------------------------------

def test_4_a_second_daemon_on_the_same_port_refuses_to_start(daemon, tmp_path):
    port = daemon.address.rsplit(":", 1)[1]
    code, output = serve(tmp_path, "--port", port, "--token-file", str(tmp_path / "token2"))
    assert code == 2 and "cannot listen on 127.0.0.1:%s: the address is in use" % port in output, output
    assert "Traceback" not in output and "listening" not in output
    assert daemon.client().models().device == "cpu"  # the first one still answers, with its own token


# -- 5. serve --unix replaces only a stale socket of ours ------------------------------------------

def test_5_unix_path_holding_a_file_is_refused_and_the_file_kept(tmp_path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(b"\xff\xd8 not really a jpeg, but precious")
    code, output = serve(tmp_path, "--unix", str(photo), "--token-file", str(tmp_path / "token"))
    assert code == 2 and "not a socket is there" in output, output
    assert photo.read_bytes() == b"\xff\xd8 not really a jpeg, but precious"


@pytest.mark.slow
def test_5_a_live_socket_is_refused_and_a_stale_one_replaced(tmp_path):
    sock = str(tmp_path / "se.sock")
    first = start_daemon(tmp_path / "a", "--unix", sock)
    try:
        code, output = serve(tmp_path, "--unix", sock, "--token-file", str(tmp_path / "token2"))
        assert code == 2 and "another daemon is listening there" in output, output
        assert first.client().models().device == "cpu"  # still its socket, still serving
    finally:
        first.process.kill()  # SIGKILL: the socket file stays behind, stale
        first.process.wait(20)
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    second = start_daemon(tmp_path / "b", "--unix", sock)
    try:
        assert second.client().models().device == "cpu"
    finally:
        stop_daemon(second)
    assert not os.path.exists(sock)


def test_5_a_daemon_never_removes_a_socket_that_is_not_its_own(tmp_path):
    sock = str(tmp_path / "se.sock")
    running = start_daemon(tmp_path, "--unix", sock)
    os.unlink(sock)  # someone else takes the path over while it runs
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(sock)
    other.listen()
    try:
        stop_daemon(running)
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)  # the other one's socket is still there
    finally:
        other.close()


# -- 2. handler threads cannot all be tied up ------------------------------------------------------

def test_2_silent_uploads_time_out_and_health_and_list_models_are_always_answered(quick):
    header = schema.ImageHeader(width=64, height=64, channels=3, sample_type=schema.U8)
    mask = schema.MaskHeader(channels=1, sample_type=schema.U8)
    held = [HeldStream(quick, "Adjust", [adjust_setup(header, mask)]) for _ in range(40)]
    try:
        time.sleep(0.5)
        started = time.monotonic()
        assert quick.client(timeout=5).models().device == "cpu"
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        with grpc.insecure_channel(quick.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert time.monotonic() - started < 2.0
        for stream in held:
            stream.thread.join(15)
        codes = [stream.error.code().name for stream in held]
        assert set(codes) <= {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"} and codes.count("DEADLINE_EXCEEDED") >= 30
        stalled = next(s.error for s in held if s.error.code().name == "DEADLINE_EXCEEDED")
        assert "the upload stalled: nothing arrived for 2 s" in stalled.details()
        busy = [s.error for s in held if s.error.code().name == "RESOURCE_EXHAUSTED"]
        assert all("as many image requests as it takes at once" in e.details() for e in busy)
    finally:
        for stream in held:
            stream.close()
    assert quick.client().filters(np.zeros((4, 4, 3), np.uint8), STACK).image.shape == (4, 4, 3)


def test_2_a_setup_that_never_comes_times_out_too(quick):
    stream = HeldStream(quick, "ApplyFilters", [])
    try:
        stream.thread.join(10)
        assert stream.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "stalled" in stream.error.details()
    finally:
        stream.close()


@pytest.mark.skipif(not shm.available(), reason="no /dev/shm")
def test_2_a_fifo_named_as_the_layer_s_segment_is_refused_at_once(quick):
    name = shm.NAME_PREFIX + "fifo-" + os.urandom(6).hex()
    path = os.path.join(shm.SEGMENT_DIR, name)
    os.mkfifo(path, 0o600)
    try:
        header = wire.header_for(np.zeros((10, 10, 3), np.uint8))
        header.shared_memory.CopyFrom(schema.SharedMemory(name=name, size=300))
        started = time.monotonic()
        for rpc, setup in (("ApplyFilters", filters_setup(header)), ("Adjust", adjust_setup(header))):
            stream = HeldStream(quick, rpc, [setup])
            stream.thread.join(10)
            stream.close()
            assert stream.error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "is not a shared-memory segment" in stream.error.details()
        assert time.monotonic() - started < 3
    finally:
        os.unlink(path)


# -- 9. memory is bounded by bytes; a wrong style is refused before the upload --------------------

def test_9_a_header_that_needs_too_many_bytes_is_refused_before_anything_is_allocated(quick):
    rss_before = rss_kib(quick.process.pid)
    header = schema.ImageHeader(width=12000, height=10000, channels=4, sample_type=schema.F32)  # 120 MP float RGBA
    mask = schema.MaskHeader(channels=64, sample_type=schema.F32)
    got, details = status_of(lambda: raw_call(quick, "ApplyFilters", [schema.FiltersRequest.FromString(
        filters_setup(header, mask_header=mask))]))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "needs about 60.3 GiB of memory" in details and "at most 4.0 GiB per request" in details, details
    assert rss_kib(quick.process.pid) - rss_before < 50_000  # nothing of that size was allocated


def test_9_an_unknown_style_or_filter_is_refused_before_any_pixel_is_sent(quick):
    header = schema.ImageHeader(width=4000, height=3000, channels=3, sample_type=schema.U8)
    for rpc, setup, words in (
            ("Adjust", adjust_setup(header, style="vaporwave"), "has no style 'vaporwave'"),
            ("Adjust", adjust_setup(header, schema.MaskHeader(channels=1, sample_type=schema.U8), style="nope"),
             "has no style 'nope'"),
            ("ApplyFilters", filters_setup(header, {"filters": [{"name": "blur"}]}), "unknown filter 'blur'")):
        stream = HeldStream(quick, rpc, [setup])  # only the setup: no pixel arrives
        stream.thread.join(1.5)  # well before the 2 s stall deadline
        stream.close()
        assert stream.error is not None and stream.error.code() == grpc.StatusCode.INVALID_ARGUMENT, rpc
        assert words in stream.error.details()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])


# -- 3. one client cannot hold the single worker ---------------------------------------------------

def test_3_a_stack_longer_than_the_maximum_is_refused_at_once(quick):
    from backend.imaging.filters import MAX_STACK

    long_stack = {"filters": [{"name": "exposure", "values": [0.01]}] * 10000}
    started = time.monotonic()
    with pytest.raises(BackendError, match="the filter stack has 10000 filters; at most %d" % MAX_STACK) as caught:
        quick.client().filters(np.zeros((64, 64, 3), np.uint8), long_stack)
    assert caught.value.code == "INVALID_ARGUMENT" and time.monotonic() - started < 5


def drip(daemon, image, first_bytes, stack=STACK):
    """A streamed ApplyFilters that sends the setup and ``first_bytes`` of the pixels, then holds back."""
    frames = list(wire.chunk_frames(np.frombuffer(wire.byte_view(image), np.uint8)[:first_bytes],
                                    wire.REQUEST_CHUNK_TAG, chunk_bytes=1 << 20))
    return HeldStream(daemon, "ApplyFilters", [filters_setup(wire.header_for(image), stack)] + frames)


def test_3_a_slow_streamed_upload_does_not_hold_the_worker(daemon):
    image = np.random.default_rng(3).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    small = np.full((32, 32, 3), 100, np.uint8)
    for sent in (1024, 2 << 20):  # before the first band is complete; inside the first band
        slow = drip(daemon, image, sent)
        try:
            time.sleep(0.3)
            started = time.monotonic()
            assert daemon.client().filters(small, STACK).image.shape == small.shape
            assert time.monotonic() - started < 4.0, sent  # the worker was not waiting on the slow one
        finally:
            slow.close()


@pytest.mark.slow
def test_3_a_slow_upload_that_resumes_still_gets_the_whole_right_result(daemon):
    from test_shared_memory import in_process

    image = np.random.default_rng(4).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    request_class, reply_class, _ = schema.RPCS["ApplyFilters"]
    frames = list(wire.chunk_frames(image, wire.REQUEST_CHUNK_TAG, chunk_bytes=1 << 20))
    other_done = threading.Event()

    def requests():
        yield filters_setup(wire.header_for(image))
        yield from frames[:10]  # the first band, and part of the second
        other_done.wait(30)  # the worker hands itself back meanwhile: the other client gets through
        yield from frames[10:]
    client = daemon.client(shared_memory=False)
    call = client._call("ApplyFilters")(requests(), metadata=client.metadata, timeout=120)
    result = {}

    def collect():
        reader = wire.ReplyReader()
        reader.read(call)
        result["image"] = reader.images["result"]
    thread = threading.Thread(target=collect)
    thread.start()
    time.sleep(2.0)
    started = time.monotonic()
    daemon.client().filters(np.zeros((8, 8, 3), np.uint8), STACK)
    assert time.monotonic() - started < 4.0
    other_done.set()
    thread.join(120)
    np.testing.assert_array_equal(result["image"], in_process(image))


def test_3_cancelling_stops_a_long_stack_within_a_band(daemon):
    """With a selection the work is buffered: the worker checks for a cancel between filters (a band of
    64 rows through 64 tone curves takes seconds on two cores)."""
    from backend.imaging.filters import MAX_STACK

    image = np.zeros((3000, 4000, 3), np.uint8)
    mask = np.full((3000, 4000), 255, np.uint8)
    long_stack = {"filters": [{"name": "tone", "values": [1, 2, 1, 1, 1, 1, 1, 0.5]}] * MAX_STACK}

    class GoAway(Exception):
        pass

    def leave(fraction, stage):
        if stage == "applying":
            raise GoAway()
    client = daemon.client(shared_memory=False)
    with pytest.raises(GoAway):
        client.filters(image, long_stack, mask=mask, on_progress=leave)
    started = time.monotonic()
    daemon.client().filters(np.zeros((8, 8, 3), np.uint8), STACK)
    assert time.monotonic() - started < 2.0


# -- 7. the command line never loses or misreads a file --------------------------------------------

def cli(*args, env=None):
    return subprocess.run(PYTHON + list(args), cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


def one_sentence(run):
    """A refusal: exit code 2 and one line on stderr, no traceback."""
    lines = run.stderr.strip().splitlines()
    return run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr


IDENTITY = {"filters": [{"name": "exposure", "values": [0.0]}]}


@pytest.fixture
def stack_file(tmp_path):
    path = tmp_path / "identity.json"
    path.write_text(json_dumps(IDENTITY))
    return str(path)


def json_dumps(value):
    import json

    return json.dumps(value)


def test_7_orientation_is_applied_and_exif_and_icc_travel_to_the_output(daemon, tmp_path, photo, stack_file):
    from PIL import Image, ImageCms

    portrait = np.ascontiguousarray(photo[:, :384])  # 512 x 384 as the camera stored it, sideways
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Careful Camera Co."
    source = tmp_path / "portrait.jpg"
    Image.fromarray(portrait).save(source, quality=95, exif=exif.tobytes(), icc_profile=icc)
    for name in ("out.jpg", "out.png", "out.tif"):
        run = cli("filters", str(source), str(tmp_path / name), "--stack", stack_file, env=daemon.env())
        assert run.returncode == 0, run.stderr
        with Image.open(tmp_path / name) as written:
            assert written.size == (512, 384)  # turned upright: what the user saw in their viewer
            assert written.info.get("icc_profile") == icc
            assert written.getexif().get(0x010F) == "Careful Camera Co." and written.getexif().get(0x0112) in (1, None)
            upright = np.asarray(written.convert("RGB")).astype(int)
        expected = np.rot90(portrait, -1).astype(int)
        assert np.abs(upright - expected).mean() < 3, name


def test_7_a_truncated_jpeg_is_refused_and_nothing_written(daemon, tmp_path, photo, stack_file):
    from PIL import Image

    whole = tmp_path / "whole.jpg"
    Image.fromarray(photo).save(whole, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    run = cli("filters", str(cut), str(tmp_path / "out.png"), "--stack", stack_file, env=daemon.env())
    assert one_sentence(run) and "is truncated or damaged" in run.stderr, run.stderr
    assert not (tmp_path / "out.png").exists()


def test_7_a_float_tiff_written_as_png_keeps_its_picture(daemon, tmp_path, stack_file):
    import cv2

    ramp = np.tile(np.linspace(0.25, 0.75, 64, dtype=np.float32)[None, :, None], (32, 1, 3))
    source = tmp_path / "scene.tif"
    assert cv2.imwrite(str(source), ramp)
    run = cli("filters", str(source), str(tmp_path / "out.png"), "--stack", stack_file, env=daemon.env())
    assert run.returncode == 0, run.stderr
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    assert np.abs(written[:, :, 0].astype(np.float64) / 65535 - ramp[:, :, 0]).max() < 1e-3


def huge_png(path, width, height):
    """A PNG whose header claims width x height (the pixel data is a stub: it must never be decoded)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def test_7_outputs_stacks_and_sizes_are_refused_before_any_work(tmp_path, photo, stack_file):
    from backend.imaging.files import write_image

    source = tmp_path / "in.png"
    write_image(str(source), photo)
    nowhere = ["--addr", "127.0.0.1:1"]  # no daemon: each refusal must come before the first call
    (tmp_path / "folder.png").mkdir()
    bad_json, bad_shape = tmp_path / "bad.json", tmp_path / "shape.json"
    bad_json.write_text("{filters: [")
    bad_shape.write_text(json_dumps({"filters": [{"name": "exposure", "values": "lots"}]}))
    huge = tmp_path / "huge.png"
    huge_png(huge, 60000, 60000)
    cases = [
        (["filters", str(source), str(tmp_path / "out.xyz"), "--stack", stack_file], "unknown output format '.xyz'"),
        (["filters", str(source), str(tmp_path / "folder.png"), "--stack", stack_file], "it is a directory"),
        (["filters", str(source), str(tmp_path / "o.png"), "--stack", str(bad_json)], "is not JSON"),
        (["filters", str(source), str(tmp_path / "o.png"), "--stack", str(bad_shape)], "the filter stack is malformed"),
        (["filters", str(huge), str(tmp_path / "o.png"), "--stack", stack_file], "60000 x 60000 = 3600 megapixels"),
        (["filters", str(source), str(source), "--stack", stack_file], "refusing to write over the input"),
        (["adjust", str(source), str(source), "--style", "local-xpro"], "refusing to write over the input"),
    ]
    original = source.read_bytes()
    for args, words in cases:
        started = time.monotonic()
        run = cli(*args, *nowhere)
        assert one_sentence(run) and words in run.stderr, (args, run.stderr)
        assert time.monotonic() - started < 20
    assert source.read_bytes() == original and not (tmp_path / "o.png").exists()


def test_7_overwrite_lets_the_input_be_replaced_on_purpose(daemon, tmp_path, photo):
    from backend.imaging.files import read_image, write_image

    source = tmp_path / "in.png"
    write_image(str(source), photo)
    darker = tmp_path / "darker.json"
    darker.write_text(json_dumps({"filters": [{"name": "exposure", "values": [-1.0]}]}))
    run = cli("filters", str(source), str(source), "--stack", str(darker), "--overwrite", env=daemon.env())
    assert run.returncode == 0, run.stderr
    assert read_image(str(source)).mean() < photo.mean() * 0.8
    assert sorted(os.listdir(tmp_path)) == ["darker.json", "in.png"]  # no temporary file left


# -- 6. float layers with huge values ---------------------------------------------------------------

@pytest.mark.parametrize("shared_memory", [False, True], ids=["streamed", "shared-memory"])
def test_6_huge_float_values_are_refused_by_a_learned_model_before_any_work(daemon, shared_memory):
    patch = np.full((96, 128, 3), 0.4, np.float32)
    patch[20:60, 30:80] = 5000.0
    client = daemon.client(shared_memory=shared_memory and shm.available())
    for image in (patch, np.full((64, 64, 3), 1e6, np.float32)):
        stages = []
        with pytest.raises(BackendError) as caught:
            client.adjust(image, style="local-xpro", model="sa-adjust",
                          on_progress=lambda fraction, stage: stages.append(stage))
        assert caught.value.code == "INVALID_ARGUMENT"
        assert "takes float samples within -8..8" in str(caught.value) and "reach" in str(caught.value)
        assert stages == []  # refused before it was queued
    scene = np.full((64, 64, 3), 0.3, np.float32)
    scene[:8] = 6.0  # scene-referred highlights inside the range still work
    result = client.adjust(scene, style="local-xpro", model="sa-adjust").image
    assert result.shape == scene.shape and np.isfinite(result).all()


@pytest.mark.parametrize("shared_memory", [False, True], ids=["streamed", "shared-memory"])
def test_6_filters_take_hdr_values_but_never_return_infinity(daemon, shared_memory):
    client = daemon.client(shared_memory=shared_memory and shm.available())
    hdr = np.full((32, 32, 3), 5000.0, np.float32)
    brighter = client.filters(hdr, {"filters": [{"name": "exposure", "values": [1.0]}]}).image
    assert np.isfinite(brighter).all() and brighter.min() == pytest.approx(10000.0, rel=1e-4)
    near_the_top = np.full((32, 32, 3), 3e38, np.float32)  # finite, but exposure takes it past float32
    for mask in (None, np.full((32, 32), 255, np.uint8)):  # streamed work and buffered work
        with pytest.raises(BackendError, match="would hold infinite values") as caught:
            client.filters(near_the_top, {"filters": [{"name": "exposure", "values": [2.0]}]}, mask=mask)
        assert caught.value.code == "INVALID_ARGUMENT"


# -- 8. shared-memory segments do not outlive killed clients -----------------------------------------

CLIENT_THAT_DIES = """
import sys, time, numpy as np
from backend.transport import shared_memory as shm
segments = shm.CallSegments()
segments.put(np.zeros((64, 64, 3), np.uint8))     # a layer written, the call never made
kept = shm.KeptSegments()
kept.array((32, 32, 4), np.uint8)                  # an editor's shared_array
print(" ".join(sorted(name for name in __import__("os").listdir(shm.SEGMENT_DIR)
                      if name.startswith(shm.NAME_PREFIX + "%x-%d-" % (shm._pid_namespace(), __import__("os").getpid())))),
      flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not shm.available(), reason="no /dev/shm")
def test_8_segments_of_a_killed_client_are_swept_and_a_live_client_s_kept(quick):
    live = shm.KeptSegments()
    live_array = live.array((16, 16, 3), np.uint8)
    stray = os.path.join(shm.SEGMENT_DIR, shm.NAME_PREFIX + "made-by-hand-" + os.urandom(4).hex())
    open(stray, "wb").close()
    process = subprocess.Popen([sys.executable, "-c", CLIENT_THAT_DIES], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        names = process.stdout.readline().split()
        assert len(names) == 2 and all(os.path.exists(os.path.join(shm.SEGMENT_DIR, n)) for n in names)
        process.kill()
        process.wait(10)
        deadline = time.time() + 5
        while time.time() < deadline and any(os.path.exists(os.path.join(shm.SEGMENT_DIR, n)) for n in names):
            time.sleep(0.1)
        assert not any(os.path.exists(os.path.join(shm.SEGMENT_DIR, n)) for n in names)
        assert live.find(live_array) is not None
        assert os.path.exists(os.path.join(shm.SEGMENT_DIR, live.find(live_array).name))  # its creator lives
        assert os.path.exists(stray)  # a name without a creator PID is never touched
    finally:
        process.kill()
        live.close()
        os.unlink(stray)


# -- 10. --allow-remote needs TLS ---------------------------------------------------------------------

@pytest.mark.slow
def test_10_a_network_bind_without_tls_is_refused_even_with_allow_remote(tmp_path):
    code, output = serve(tmp_path, "--host", "0.0.0.0", "--port", "0", "--allow-remote",
                         "--token-file", str(tmp_path / "token"))
    assert code == 2 and "without TLS: the token would cross the network in clear text" in output, output
    code, output = serve(tmp_path, "--port", "0", "--tls-cert", str(tmp_path / "missing.crt"),
                         "--token-file", str(tmp_path / "token"))
    assert code == 2 and "needs both a certificate and its key" in output, output


def test_10_tls_serves_a_client_that_trusts_the_certificate_and_no_other(tmp_path, certificate, photo):
    cert, key = certificate
    running = start_daemon(tmp_path, "--host", "0.0.0.0", "--allow-remote", "--tls-cert", cert, "--tls-key", key)
    try:
        port = running.address.rsplit(":", 1)[1]
        trusting = Client("127.0.0.1:" + port, token_file=running.token_file, tls_ca=cert)
        assert not trusting.models().shared_memory  # a network address: pixels always stream
        out = trusting.filters(photo, STACK).image
        assert out.shape == photo.shape and np.abs(out.astype(int) - photo).mean() > 5
        with pytest.raises(BackendError) as plain:  # a client speaking plain gRPC gets nowhere
            Client("127.0.0.1:" + port, token_file=running.token_file, timeout=5).models()
        assert plain.value.code == "UNAVAILABLE"
        run = subprocess.run(PYTHON + ["models", "--addr", "127.0.0.1:" + port, "--token-file", running.token_file,
                                       "--tls-ca", cert], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and "filters" in run.stdout, run.stderr
    finally:
        stop_daemon(running)
