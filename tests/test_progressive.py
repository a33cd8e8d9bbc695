"""PIEA (model ``progressive``): the search on the critic, the product entry through the real daemon
(steps, step images, 16-bit, replay with ``filters``), the bad inputs, and the evaluation's parts."""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from backend import models
from backend.client import BackendError
from backend.imaging import filters, upsample
from backend.imaging.files import read_image, write_image
from backend.models.progressive import search as piea

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
installed = pytest.mark.skipif(not models.get("progressive").installed(), reason="the critic's weights are not installed")


@pytest.fixture(scope="module")
def critic():
    model = models.get("critic")
    model.ensure_loaded("cpu")
    return piea.Critic(model.head)


def small(photo, side=256):
    return upsample.downscale(torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1), side)


def test_the_search_starts_at_identity_and_exposure_where_asked():
    stack = piea.to_stack(piea.start_raw(exposure_start=0.0))
    assert [bank.name for bank, _ in stack] == filters.ORDER
    for bank, values in stack:
        assert values == pytest.approx(bank.neutral_values(), abs=1e-4)
    image = torch.rand(1, 3, 8, 8) * 0.98 + 0.01   # gamma floors values at 0.001
    assert torch.allclose(piea.replay(image, stack), image, atol=1e-4)
    exposure = piea.to_stack(piea.start_raw(piea.PAPER_EXPOSURE_START))
    assert exposure.steps[0][1] == pytest.approx([1.0], abs=1e-4)


@installed
def test_gradient_steps_raise_the_critics_score_within_the_filters_ranges(critic, photo):
    darker = small(photo) * 0.35   # about -1.5 EV
    stacks, scores = piea.search(darker, critic, steps=5, lr=piea.PAPER_LEARNING_RATE, exposure_start=0.0,
                                 prior=piea.PAPER_PRIOR)   # the paper's search
    assert len(stacks) == 5 and len(scores) == 6
    assert scores[-1] > scores[0] + 0.1
    final = stacks[-1]
    assert final.steps[0][1][0] > 0.1          # the search brightens
    assert final.steps[2][1][0] == 1.0         # white balance: red stays at 1 (EXPOSURE)
    filters.FilterStack.parse(final.to_json())  # every value in its filter's range


@installed
def test_the_proximal_prior_keeps_a_photo_closer_to_where_it_started(critic, photo):
    view = small(photo)
    moved = {}
    for prior in (piea.PAPER_PRIOR, piea.PRIOR):
        stacks, _ = piea.search(view, critic, steps=5, prior=prior)
        with torch.no_grad():
            moved[prior] = float(((piea.replay(view, stacks[-1]) - view.clamp(0.001, 1)) ** 2).mean())
    assert moved[piea.PRIOR] < moved[piea.PAPER_PRIOR]


@installed
def test_daemon_progressive_returns_the_stack_per_step_and_the_image_after_each_filter(daemon, photo):
    reply = daemon.client().progressive(photo, steps=3, return_step_images=True, options={"exposure-start": "0"})
    summary = reply.summary_dict()
    assert len(summary["steps"]) == 3
    names = [f["name"] for f in summary["filter_stack"]["filters"]]
    assert names == filters.ORDER
    labels = [f["label"] for f in reply.parameters["filter_stack"]["filters"]]
    assert labels[0].startswith("Exposure ") and labels[0].endswith(" EV")
    roles = sorted(role for role in reply.images if role.startswith("step/"))
    assert ["step/%d %s" % (k + 1, name) for k, name in enumerate(names)] == sorted(roles, key=lambda r: int(r[5:].split()[0]))
    np.testing.assert_array_equal(reply.images["step/8 color"], reply.image)
    assert not np.array_equal(reply.image, photo)
    critic_scores = reply.parameters["critic_scores"]
    assert len(critic_scores) == 4 and critic_scores[-1] > critic_scores[0]


@installed
def test_progressive_json_replays_with_filters_and_keeps_16_bit(daemon, tmp_path, photo):
    deep = (photo.astype(np.uint16) * 257 // 2)   # a dark 16-bit photo
    source, out, stack, replayed = (str(tmp_path / n) for n in ("in.png", "out.png", "stack.json", "replayed.png"))
    write_image(source, deep)

    def cli(*args):
        run = subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=300, env=daemon.env())
        assert run.returncode == 0, run.stderr
        return run

    cli("progressive", source, out, "--steps", "4", "--json", stack)
    written = json.loads(open(stack).read())
    assert [f["name"] for f in written["filters"]] == filters.ORDER
    cli("filters", source, replayed, "--stack", stack)
    result, again = read_image(out), read_image(replayed)
    assert result.dtype == np.uint16 and result.shape == deep.shape
    # the JSON rounds values to 6 decimals: the replay matches to a 16-bit code or two
    assert np.abs(result.astype(np.int32) - again.astype(np.int32)).max() <= 2
    assert result.mean() > deep.mean()


@installed
@pytest.mark.parametrize("call, sentence", [
    (dict(steps=500), "steps must be between 1 and 200"),
    (dict(options={"learning-rate": "fast"}), "learning-rate is a number"),
    (dict(options={"exposure-start": "9"}), "exposure-start must be between -3.5 and 3.5"),
    (dict(options={"prior": "-1"}), "prior must be between 0 and 100000"),
    (dict(options={"temperature": "1"}), "model 'progressive' has no option temperature"),
])
def test_bad_requests_are_one_sentence_before_any_upload(daemon, photo, call, sentence):
    with pytest.raises(BackendError, match=sentence) as caught:
        daemon.client().progressive(photo, **call)
    assert caught.value.code == "INVALID_ARGUMENT"


@installed
def test_a_layer_too_small_to_score_is_refused(daemon):
    with pytest.raises(BackendError, match="at least 32 pixels on each side") as caught:
        daemon.client().progressive(np.zeros((20, 300, 3), np.uint8))
    assert caught.value.code == "INVALID_ARGUMENT"


@installed
def test_cancel_mid_search_frees_the_worker_within_a_step(daemon, photo):
    class GoAway(Exception):
        pass

    seen = []

    def leave(fraction, stage):
        seen.append(stage)
        if stage == "searching" and fraction > 0.06:
            raise GoAway()
    with pytest.raises(GoAway):
        daemon.client().progressive(photo, steps=200, on_progress=leave)
    started = time.monotonic()
    daemon.client().score(photo)
    # one search step (a backbone pass forward and back) plus the score itself
    assert time.monotonic() - started < 5.0


def test_step_labels_say_what_the_filter_does():
    assert filters.FILTERS["exposure"].label([0.42]) == "Exposure +0.42 EV"
    assert filters.FILTERS["tone"].label([1] * 8) == "Tone curve 25%→25%, 50%→50%, 75%→75%"
    assert filters.FILTERS["color"].label([1.0] * 8 + [1.1] * 4 + [0.9] * 4 + [1.0] * 8).startswith(
        "Colour curves R 50%→50%, G 50%→55%")


def test_distortions_baselines_and_metrics():
    from training.progressive import baselines, distort, metrics

    rng = np.random.default_rng(0)
    clean = torch.from_numpy(rng.uniform(0.1, 0.9, (3, 128, 96)).astype(np.float32))
    for family in distort.FAMILIES:
        one, said = distort.distort(clean, family, 3)
        again, _ = distort.distort(clean, family, 3)
        assert torch.equal(one, again) and said and one.dtype == torch.float32 and one.shape == clean.shape
    assert metrics.psnr(clean, clean) == pytest.approx(100.0)
    assert metrics.psnr(clean * 0.5, clean) < 20
    assert metrics.ciede2000(clean, clean) == pytest.approx(0.0, abs=1e-6)
    assert metrics.histogram_intersection([clean], [clean]) == {"luminance": 1.0, "contrast": 1.0, "saturation": 1.0}
    dark = clean * 0.3
    for name, method in baselines.BASELINES.items():
        out = method(dark)
        assert out.shape == dark.shape and metrics.psnr(out, clean) > metrics.psnr(dark, clean), name


@installed
def test_eval_progressive_runs_on_any_folder_of_photos(tmp_path, photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    write_image(str(folder / "astronaut.png"), photo)
    out = tmp_path / "eval.json"
    run = subprocess.run([sys.executable, "-m", "backend.cli", "eval", "progressive", "--photos", str(folder),
                          "--per-photo", "1", "--steps", "2", "--json", str(out)], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| PIEA |" in run.stdout and "percentile stretch" in run.stdout
    written = json.loads(out.read_text())
    assert written["tables"]["all"]["_"]["cases"] == 2 and len(written["rows"]) == 2
    assert {row["family"] for row in written["rows"]} == {"critic", "other"}
