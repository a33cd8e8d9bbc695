import math

import pytest
import torch

from backend.imaging import filters as bank
from backend.imaging.mixing import Mix


@pytest.fixture
def image():
    torch.manual_seed(0)
    return torch.rand(2, 3, 16, 16) * 0.98 + 0.01


@pytest.mark.parametrize("name", bank.ORDER)
def test_every_filter_is_the_identity_at_neutral(name, image):
    filt = bank.FILTERS[name]
    out = filt.apply(image, torch.tensor(filt.neutral_values()))
    assert (out - image).abs().max().item() < 2e-5


@pytest.mark.parametrize("name", bank.ORDER)
def test_raw_parameters_map_into_the_range_and_back(name):
    filt = bank.FILTERS[name]
    values = filt.from_raw(torch.linspace(-6, 6, filt.size))
    assert values.min() >= filt.low - 1e-5 and values.max() <= filt.high + 1e-5
    mid = (torch.rand(filt.size) * 0.8 + 0.1) * (filt.high - filt.low) + filt.low
    assert torch.allclose(filt.from_raw(filt.to_raw(mid)), mid, atol=1e-4)


def test_exposure_doubles_per_stop(image):
    out = bank.FILTERS["exposure"].apply(image, torch.tensor([1.0]))
    assert torch.allclose(out, image * 2)


def test_gamma_and_bw_known_values():
    grey = torch.full((1, 3, 1, 1), 0.25)
    assert bank.FILTERS["gamma"].apply(grey, torch.tensor([0.5])).flatten()[0].item() == pytest.approx(0.5)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert bank.FILTERS["bw"].apply(red, torch.tensor([1.0])).flatten().tolist() == pytest.approx([0.27] * 3)


def test_white_balance_keeps_luminance():
    from backend.imaging.color import luminance

    grey = torch.full((1, 3, 4, 4), 0.5)
    out = bank.FILTERS["white_balance"].apply(grey, torch.tensor([1.3, 1.0, 0.8]))
    assert luminance(out).mean().item() == pytest.approx(0.5, abs=1e-4)
    assert out[0, 0, 0, 0] > out[0, 2, 0, 0]


def test_saturation_matches_the_hsv_formula():
    import colorsys

    rgb = (0.6, 0.4, 0.2)
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    s2 = s + (1 - s) * (0.5 - abs(0.5 - v)) * 0.8
    expected = colorsys.hsv_to_rgb(h, s2, v)
    out = bank.FILTERS["saturation"].apply(torch.tensor(rgb).view(1, 3, 1, 1), torch.tensor([1.0]))
    assert out.flatten().tolist() == pytest.approx(list(expected), abs=1e-5)


def test_contrast_darkens_shadows_and_brightens_highlights():
    dark, bright = torch.full((1, 3, 1, 1), 0.2), torch.full((1, 3, 1, 1), 0.8)
    f = bank.FILTERS["contrast"]
    assert f.apply(dark, torch.tensor([1.0])).mean() < 0.2 - 0.05
    assert f.apply(bright, torch.tensor([1.0])).mean() > 0.8 + 0.05
    expected = -math.cos(math.pi * 0.2) * 0.5 + 0.5
    assert f.apply(dark, torch.tensor([1.0])).mean().item() == pytest.approx(expected, abs=1e-4)


def test_tone_curve_is_monotone_and_lifts_shadows():
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, -1).expand(1, 3, 1, 256)
    knots = [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    out = bank.FILTERS["tone"].apply(ramp, torch.tensor(knots))
    assert (out[..., 1:] - out[..., :-1] >= -1e-6).all()
    assert out[0, 0, 0, 64] > ramp[0, 0, 0, 64] and out[0, 0, 0, -1].item() == pytest.approx(1.0, abs=1e-5)


def test_stack_is_differentiable_for_the_optimiser(image):
    raw = torch.zeros(1, requires_grad=True)
    out = bank.FILTERS["exposure"].apply(image, bank.FILTERS["exposure"].from_raw(raw))
    out.mean().backward()
    assert raw.grad is not None and raw.grad.abs().item() > 0


def test_parse_stack_errors_are_sentences():
    with pytest.raises(ValueError, match="unknown filter 'blur'"):
        bank.parse_stack({"filters": [{"name": "blur", "values": [1]}]})
    with pytest.raises(ValueError, match="outside its range"):
        bank.parse_stack({"filters": [{"name": "exposure", "values": [9]}]})
    with pytest.raises(ValueError, match="takes 8 values"):
        bank.parse_stack({"filters": [{"name": "tone", "values": [1, 1]}]})


def test_tiled_application_equals_whole_image_and_respects_the_mask():
    torch.manual_seed(1)
    big = torch.rand(3, 1100, 70)
    stack = bank.parse_stack({"filters": [{"name": "exposure", "values": [0.4]}, {"name": "contrast", "values": [0.5]},
                                          {"name": "saturation", "values": [0.7]}]})
    whole = bank.apply_stack(big, stack)
    mask = torch.zeros(1, 1100, 70)
    mask[:, :, 35:] = 1
    tiled = bank.apply_stack_tiled(big.clone(), stack, mix=Mix(selection=mask), rows=256)
    assert torch.allclose(tiled[:, :, 35:], whole[:, :, 35:], atol=1e-6)
    assert torch.equal(tiled[:, :, :35], big[:, :, :35])


def test_stack_json_round_trip_with_labels():
    stack = bank.parse_stack({"filters": [{"name": "exposure", "values": [0.42]}]})
    as_json = bank.stack_to_json(stack)
    assert as_json["filters"][0]["label"] == "Exposure +0.42 EV"
    assert bank.parse_stack(as_json)[0][1] == pytest.approx([0.42])


SAME_TWICE = """
import numpy as np, torch
from backend.imaging import filters as bank
torch.set_num_threads(2)
image = torch.from_numpy(np.random.default_rng(7).random((3, 123, 211), dtype=np.float32))
stack = bank.parse_stack({"filters": [{"name": "exposure", "values": [0.5]}, {"name": "contrast", "values": [0.4]},
                                      {"name": "saturation", "values": [0.6]}]})
first = bank.apply_stack_tiled(image.clone(), stack)
second = bank.apply_stack_tiled(image.clone(), stack)
print(int((first != second).sum()))
"""


def test_tiled_application_gives_the_same_bits_on_every_call_in_a_fresh_process():
    """A process's first multi-threaded torch operation could round differently (1 ulp, so 1 level in 8
    bits on a few pixels: the same request came back different). The band pool runs each band on one
    torch thread; fresh processes, as the daemon is, since only a first call showed it."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", SAME_TWICE], cwd=root, capture_output=True, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS="2"), timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-1] == "0", out.stdout


def test_a_cancelled_job_stops_between_filters_inside_the_bands_on_the_band_pool():
    """The bands run on the band pool's threads; ``jobs.checkpoint`` there still sees the job they work for
    (threads.run copies the caller's context), so a cancel stops a long stack between two filters."""
    import threading

    from backend import jobs

    reached, threads_seen = [], set()

    class Counting(bank.Filter):
        name, title, low, high, neutral = "counting", "Counting", -1.0, 1.0, 0.0

        def apply(self, image, values):
            threads_seen.add(threading.current_thread().name)
            reached.append(1)
            job.cancelled.set()   # a client goes away while the first filter runs
            return image

    stack = [(Counting(), [0.0])] * 10
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        job = jobs.Job(lambda job: bank.apply_stack_tiled(torch.zeros(3, 64, 8), stack, rows=32))
        job._run()
    finally:
        torch.set_num_threads(previous)
    assert isinstance(job.error, jobs.Cancelled)
    assert any(name.startswith("bands") for name in threads_seen)
    assert len(reached) <= 2    # each of the two bands stops after its first filter, not after ten
