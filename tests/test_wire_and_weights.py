import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend import weights
from backend.transport import schema, wire

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_chunks_reassemble_into_the_same_pixels_and_mask():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65535, size=(333, 517, 3)).astype(np.uint16)
    mask = rng.random((333, 517), dtype=np.float32)
    receiver = wire.Receiver(wire.header_for(image), wire.mask_header_for(mask))
    for chunk in wire.chunks(image, chunk_bytes=100_000):
        receiver.feed(chunk)
    for chunk in wire.chunks(mask, chunk_bytes=100_000):
        receiver.feed(chunk)
    got_image, got_mask = receiver.finish()
    np.testing.assert_array_equal(got_image, image)
    np.testing.assert_array_equal(got_mask[:, :, 0], mask)


def _feed_in_a_thread(receiver, pieces, error=None, pause=0.0):
    import threading
    import time

    def feed():
        for piece in pieces:
            time.sleep(pause)
            receiver.feed(piece)
        receiver.end(error)
    thread = threading.Thread(target=feed)
    thread.start()
    return thread


def test_rows_come_out_in_bands_while_another_thread_feeds():
    image = np.random.default_rng(1).integers(0, 256, size=(101, 37, 4)).astype(np.uint8)
    receiver = wire.Receiver(wire.header_for(image))
    thread = _feed_in_a_thread(receiver, wire.chunks(image, chunk_bytes=999), pause=0.0005)
    bands = list(receiver.rows(16))
    thread.join()
    assert [len(band) for band in bands] == [16] * 6 + [5]
    np.testing.assert_array_equal(np.concatenate(bands), image)


def test_rows_of_a_truncated_broken_or_stalled_upload_raise_a_sentence():
    image = np.zeros((20, 10, 3), np.float32)
    receiver = wire.Receiver(wire.header_for(image))
    _feed_in_a_thread(receiver, [image[:15].tobytes()]).join()
    with pytest.raises(wire.WireError, match="truncated"):
        list(receiver.rows(4))
    receiver = wire.Receiver(wire.header_for(image))
    _feed_in_a_thread(receiver, [image[:5].tobytes()], error=wire.WireError("INVALID_ARGUMENT", "broken off")).join()
    with pytest.raises(wire.WireError, match="broken off"):
        list(receiver.rows(4))
    receiver = wire.Receiver(wire.header_for(image))
    with pytest.raises(wire.WireError, match="stalled") as caught:
        list(receiver.rows(4, stall_seconds=0.05))
    assert caught.value.code == "DEADLINE_EXCEEDED"
    nan = image.copy()
    nan[12, 3, 0] = np.nan
    receiver = wire.Receiver(wire.header_for(nan))
    _feed_in_a_thread(receiver, [nan.tobytes()]).join()
    rows = receiver.rows(8)
    assert next(rows).shape == (8, 10, 3)
    with pytest.raises(wire.WireError, match="NaN"):
        next(rows)


@pytest.mark.parametrize("change, code, words", [
    (dict(width=0, height=0), "INVALID_ARGUMENT", "empty"),
    (dict(width=100000, height=100000), "RESOURCE_EXHAUSTED", "megapixels"),
    (dict(channels=5), "INVALID_ARGUMENT", "channels"),
    (dict(sample_type=0), "INVALID_ARGUMENT", "sample type"),
])
def test_impossible_headers_are_refused_with_a_sentence(change, code, words):
    header = schema.ImageHeader(width=10, height=10, channels=3, sample_type=schema.U8)
    for key, value in change.items():
        setattr(header, key, value)
    with pytest.raises(wire.WireError, match=words) as caught:
        wire.Receiver(header)
    assert caught.value.code == code


def test_a_mask_of_another_size_is_refused():
    header = schema.ImageHeader(width=10, height=10, channels=3, sample_type=schema.U8)
    with pytest.raises(wire.WireError, match="mask is 5 x 10 pixels but the image is 10 x 10"):
        wire.Receiver(header, schema.MaskHeader(channels=1, sample_type=schema.U8, width=5, height=10))


def test_descriptor_set_is_current_with_the_proto(tmp_path):
    out = tmp_path / "fresh.binpb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", "--descriptor_set_out=%s" % out,
                    "proto/semantic_enhance/v1/semantic_enhance.proto"], cwd=REPO, check=True)
    assert out.read_bytes() == open(schema.DESCRIPTOR_FILE, "rb").read(), "run `make proto`"


def test_weights_are_verified_by_sha256_before_loading(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "head.safetensors"
    save_file({"w": torch.arange(4.0)}, str(path))
    weights.record(str(path), "test", "1", "unit test", {"l2": 1.0}, directory=str(tmp_path))
    assert torch.equal(weights.load("head.safetensors", directory=str(tmp_path))["w"], torch.arange(4.0))
    with open(path, "r+b") as handle:  # flip one byte of the tensor data
        handle.seek(-1, 2)
        byte = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(weights.WeightsError, match="does not match its manifest"):
        weights.load("head.safetensors", directory=str(tmp_path))
    with pytest.raises(weights.WeightsError, match="not listed"):
        weights.load("other.safetensors", directory=str(tmp_path))


def test_chunk_frames_are_plain_protobuf_and_decode_without_copies():
    pixels = np.arange(300_000, dtype=np.uint16).reshape(300, 500, 2) % 65535
    frames = list(wire.chunk_frames(pixels, wire.REQUEST_CHUNK_TAG, chunk_bytes=100_000))
    # any protobuf client reads them as ordinary messages ...
    assert b"".join(schema.FiltersRequest.FromString(f).chunk for f in frames) == pixels.tobytes()
    # ... and our decoder turns them into views of the received bytes; other messages parse normally
    decode = wire.frame_decoder(schema.FiltersRequest, wire.REQUEST_CHUNK_TAG)
    views = [decode(f) for f in frames]
    assert all(isinstance(v, wire.Chunk) for v in views)
    assert b"".join(bytes(v.data) for v in views) == pixels.tobytes()
    setup = schema.FiltersRequest(setup=schema.FiltersSetup(image=wire.header_for(pixels)))
    assert decode(setup.SerializeToString()).setup.image.width == 500
    reply_decode = wire.frame_decoder(schema.Reply, wire.REPLY_CHUNK_TAG)
    image_header = schema.Reply(image=wire.header_for(pixels)).SerializeToString()  # field 2 of Reply: not a chunk
    assert reply_decode(image_header).image.height == 300
