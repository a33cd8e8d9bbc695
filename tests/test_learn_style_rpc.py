"""LearnStyle over real gRPC: a real daemon on loopback learns a style from streamed before/after pairs, serves it
at once, refuses bad input with a sentence (writing nothing), and stops when the client goes away.

The looks are invented (training/fcn_stylize/invented.py) on real photographs that pip installs.
"""

import os
import time

import cv2
import numpy as np
import pytest

from backend.client import BackendError
from backend.transport import schema, wire
from training.fcn_stylize import invented, learn

NAMES = ("astronaut", "coffee", "china", "grace-hopper", "hubble", "retina")


@pytest.fixture(scope="module")
def learning_daemon(tmp_path_factory):
    from tests.conftest import start_daemon_with_styles, stop_daemon

    running, styles = start_daemon_with_styles(tmp_path_factory)
    yield running, styles
    stop_daemon(running)


def _u8(rgb):
    return (rgb * 255 + 0.5).astype(np.uint8)


def _u16(rgb):
    return (rgb * 65535 + 0.5).astype(np.uint16)


def _pairs(names, program=invented.split_toning, side=96):
    return [(name, rgb, program(rgb)) for name, rgb in invented.photos(names, side=side).items()]


def _listing(folder):
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_a_style_learnt_over_grpc_is_served_at_once(learning_daemon):
    daemon, styles = learning_daemon
    client = daemon.client()
    pairs = _pairs(NAMES[:3])
    # 8 and 16 bits, gray-free RGB; one after-image exported at 3/4 size (a resize, not a crop)
    smaller = cv2.resize(_u8(pairs[2][2]), None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    sent = [(pairs[0][0], _u8(pairs[0][1]), _u8(pairs[0][2])),
            (pairs[1][0], _u16(pairs[1][1]), _u16(pairs[1][2])),
            (pairs[2][0], _u8(pairs[2][1]), smaller)]
    stages = []
    result = client.learn_style(sent, "teal-orange", on_progress=lambda fraction, stage: stages.append((fraction, stage)))

    assert result.summary.learnt_style.name == "teal-orange" and result.summary.model == "fcn-stylize"
    report = result.parameters
    assert [row["name"] for row in report["pairs"]] == [name for name, _, _ in sent]
    assert all(row["training"] < row["input"] for row in report["pairs"])
    assert report["held_out_ratio"] < 0.5 and report["training_ratio"] < report["held_out_ratio"]
    assert [stage for _, stage in stages].index("receiving pairs") < [stage for _, stage in stages].index("fitting")
    assert "held-out check" in [stage for _, stage in stages]
    assert _listing(styles) == ["teal-orange.md", "teal-orange.safetensors"]
    assert "LearnStyle call" in (styles / "teal-orange.md").read_text()

    listed = {m.id: m for m in client.models().models}
    assert listed["fcn-stylize"].installed and list(listed["fcn-stylize"].styles)[-1:] == ["teal-orange"]
    photo = invented.photos(["rocket"], side=200)["rocket"]
    adjusted = client.adjust(_u8(photo), style="teal-orange")  # no model named: the learnt style names its own
    assert adjusted.summary.model == "fcn-stylize" and adjusted.image.shape == photo.shape
    got = adjusted.image.astype(np.float32) / 255
    expected = invented.split_toning(photo)
    # three 96 px pairs: a looser bar than the ten
    assert learn.lab_distance(got, expected) <= 0.4 * learn.lab_distance(photo, expected)

    with pytest.raises(BackendError) as taken:  # the user's style is never overwritten unasked
        client.learn_style(sent, "teal-orange")
    assert taken.value.code == "ALREADY_EXISTS" and "already exists" in str(taken.value)
    before = (styles / "teal-orange.safetensors").read_bytes()
    assert client.learn_style(sent[::-1], "teal-orange", replace=True).summary.learnt_style.name == "teal-orange"
    assert (styles / "teal-orange.safetensors").read_bytes() != before


def test_learn_style_options_reach_the_fit_and_are_recorded(learning_daemon):
    """LearnStyle's options, as `train fcn-stylize --no-position-terms --regularisation X` sends them: a
    colour-only look (no position terms in the file), the factor on the regularisers, both in the report
    and the card."""
    from backend.models.fcn_stylize import store

    daemon, styles = learning_daemon
    client = daemon.client()
    sent = [(name, _u8(b), _u8(a)) for name, b, a in _pairs(NAMES[:3], side=64)]
    result = client.learn_style(sent, "plain-colour", options={"position_terms": "no", "regularisation": "2"})
    assert result.parameters["options"] == {"position_terms": False, "regularisation": 2.0}
    look, metadata = store.load("plain-colour", directory=str(styles))
    assert not look.has_spatial and look.lut.abs().max() > 0
    assert '"regularisation": 2.0' in metadata["report"]
    assert "position terms no" in (styles / "plain-colour.md").read_text()
    with_terms = client.learn_style(sent, "with-terms", options={"position_terms": "yes"})
    assert with_terms.parameters["options"] == {"position_terms": True, "regularisation": 1.0}
    assert store.load("with-terms", directory=str(styles))[0].has_spatial


def _raw_call(client, frames):
    call = client._call("LearnStyle")(iter(frames), metadata=client.metadata, timeout=60)
    return client._collect(call, call, wire.ReplyReader())


def _setup(name="mine", count=3):
    return schema.LearnStyleRequest(setup=schema.LearnStyleSetup(name=name, pair_count=count)).SerializeToString()


def _image_frames(image, role):
    yield schema.LearnStyleRequest(image=wire.header_for(image, role=role)).SerializeToString()
    yield from wire.chunk_frames(image, wire.REQUEST_CHUNK_TAG)


def _bad_inputs():
    pairs = [(n, _u8(b), _u8(a)) for n, b, a in _pairs(NAMES[:3], side=48)]
    cropped = [pairs[0], (pairs[1][0], pairs[1][1], pairs[1][2][:, 12:]), pairs[2]]
    nan = np.full((48, 48, 3), np.nan, np.float32)
    truncated = [_setup(), *_image_frames(pairs[0][1], "before")][:-1] + [b"\x12\x03abc"]
    return {
        "two pairs": (lambda c: c.learn_style(pairs[:2], "mine"), "at least 3 before/after pairs"),
        "built-in name": (lambda c: c.learn_style(pairs, "cold"), "built-in style"),
        "not a name": (lambda c: c.learn_style(pairs, "../evil"), "a style name is"),
        "cropped after-image": (lambda c: c.learn_style(cropped, "mine"), "differ by more than a resize"),
        "NaN pixels": (lambda c: c.learn_style([pairs[0], (pairs[1][0], nan, nan), pairs[2]], "mine"),
                       "NaN or infinite"),
        "truncated image": (lambda c: _raw_call(c, truncated), "ended after"),
        "chunks without a header": (lambda c: _raw_call(c, [_setup(), b"\x12\x03abc"]), "must start with its image header"),
        "an unknown option": (lambda c: _raw_call(c, [schema.LearnStyleRequest(setup=schema.LearnStyleSetup(
            name="mine", pair_count=3, options={"lut": "33"})).SerializeToString()]), "unknown option 'lut'"),
        "an option's bad value": (lambda c: c.learn_style(pairs, "mine", options={"regularisation": "100"}),
                                  "regularisation is a number from 0.1 to 10"),
        "two after-images": (lambda c: _raw_call(c, [_setup(), *_image_frames(pairs[0][2], "after")]),
                             "each pair is its before image, then its after image"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_input_is_one_sentence_and_writes_nothing(learning_daemon, case):
    daemon, styles = learning_daemon
    before = _listing(styles)
    call, words = _bad_inputs()[case]
    with pytest.raises(BackendError) as refused:
        call(daemon.client())
    assert refused.value.code == "INVALID_ARGUMENT", refused.value
    assert words in str(refused.value) and "Traceback" not in str(refused.value)
    assert _listing(styles) == before


class Stop(Exception):
    pass


def test_cancelling_mid_learning_stops_the_job_and_writes_nothing(learning_daemon):
    daemon, styles = learning_daemon
    client = daemon.client()
    pairs = [(n, _u8(b), _u8(a)) for n, b, a in _pairs(NAMES, side=128)]
    before = _listing(styles)
    stages = []

    def leave(fraction, stage):
        stages.append(stage)
        if stage == "held-out check":  # learning for a while: go away
            raise Stop()
    with pytest.raises(Stop):
        client.learn_style(pairs, "cancelled", on_progress=leave)
    gone = time.monotonic()
    # the worker is free again within one least-squares solve: a small job queued now comes back quickly
    small = _u8(invented.photos(["rocket"], side=64)["rocket"])
    client.filters(small, {"filters": [{"name": "exposure", "values": [0.3]}]})
    freed = time.monotonic() - gone
    # one least-squares solve on this machine as it is loaded now: the job may finish the one it is in
    shares = [learn.normal_equations(b.astype(np.float32) / 255, a.astype(np.float32) / 255, learn.LUT_SIZE)
              for _, b, a in pairs[:3]]
    started = time.monotonic()
    learn.solve(shares, learn.LUT_SIZE)
    solve = time.monotonic() - started
    print("\nworker free %.1f s after the client left (one solve here: %.1f s)" % (freed, solve))
    assert freed < 2 * solve + 3.0
    time.sleep(1.0)
    assert _listing(styles) == before and "cancelled" not in [m for model in client.models().models
                                                               for m in model.styles]


def test_learning_needs_the_token(learning_daemon):
    from backend.client import Client

    daemon, styles = learning_daemon
    before = _listing(styles)
    pairs = [(n, _u8(b), _u8(a)) for n, b, a in _pairs(NAMES[:3], side=32)]
    with Client(daemon.address, token="not-the-token") as stranger, pytest.raises(BackendError) as refused:
        stranger.learn_style(pairs, "intruder")
    assert refused.value.code == "UNAUTHENTICATED" and _listing(styles) == before


def test_train_with_daemon_learns_through_the_rpc(learning_daemon, tmp_path, capsys):
    from backend.cli import main

    daemon, styles = learning_daemon
    for folder, program in (("before", lambda rgb: rgb), ("after", invented.vignette)):
        (tmp_path / folder).mkdir()
        for name, rgb, _ in _pairs(NAMES[3:6], side=80):
            cv2.imwrite(str(tmp_path / folder / (name + ".png")), _u16(program(rgb))[:, :, ::-1])
    flags = ["--daemon", "--addr", daemon.address, "--token-file", daemon.token_file, "--quiet"]
    pairs = ["--pairs", str(tmp_path / "before"), str(tmp_path / "after")]
    assert main(["train", "fcn-stylize", *pairs, "--name", "over-grpc", *flags]) == 0
    assert "the daemon learnt style 'over-grpc' from 3 pairs" in capsys.readouterr().out
    assert (styles / "over-grpc.safetensors").exists()
    listing = _listing(styles)
    assert main(["train", "fcn-stylize", *pairs, "--name", "over-grpc", *flags]) == 2  # taken: the daemon's sentence
    assert "ALREADY_EXISTS" in capsys.readouterr().err and _listing(styles) == listing
    assert main(["train", "fcn-stylize", *pairs, "--name", "spring", *flags]) == 2  # refused before anything is read
    assert "built-in style" in capsys.readouterr().err and _listing(styles) == listing
