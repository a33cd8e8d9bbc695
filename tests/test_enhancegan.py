"""EnhanceGAN (model ``enhancegan``): the enhancers' exact curves and filters, the crop ranking, the product
entry through the real daemon (both methods, 16-bit, the selection, ranked crops with and without an aspect
ratio, the CLI's crop files), the bad inputs, and the recomposition set's parts."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from backend import models
from backend.client import BackendError
from backend.imaging import enhancers
from backend.imaging.files import read_image, write_image
from backend.models.enhancegan import cropping, network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
installed = pytest.mark.skipif(not models.get("enhancegan").installed(), reason="enhancegan's weights are not installed")


def values(**given):
    base = {"a": 0.25, "b": 0.05, "p": 2.0, "q": 0.7, "alpha": 0.2, "beta": 0.1}
    base.update(given)
    return torch.tensor([[base[n] for n in enhancers.NAMES]])


def test_the_l_curve_is_the_authors_piecewise_curve():
    v = values()
    m = torch.linspace(0, 1, 1001).view(1, -1)
    out = enhancers.l_curve(m, v)[0]
    a, b = 0.25, 0.05
    assert float(out[m[0] < b].abs().max()) == 0.0                        # clipped to black below b
    assert float((out[m[0] >= 1 - b] - 1).abs().max()) == 0.0             # and to white above 1 - b
    middle = (m[0] >= a) & (m[0] < 1 - a)
    assert torch.allclose(out[middle], m[0][middle])                       # identity in the midtones
    # continuous at a and 1 - a; the shadows lifted (1/p < 1: concave), the highlights shaped (1/q > 1: convex)
    for knot in (a, 1 - a):
        near = enhancers.l_curve(torch.tensor([[knot - 1e-4, knot + 1e-4]]), v)[0]
        assert float((near[1] - near[0]).abs()) < 2e-3
    shadow = enhancers.l_curve(torch.tensor([[0.15]]), v)[0, 0]
    assert float(shadow) == pytest.approx(a / (a - b) ** 0.5 * (0.15 - b) ** 0.5, rel=1e-4)
    highlight = enhancers.l_curve(torch.tensor([[0.85]]), v)[0, 0]
    assert float(highlight) == pytest.approx(a / (a - b) ** (1 / 0.7) * (0.85 - 0.75) ** (1 / 0.7) + 0.75, rel=1e-4)


def test_the_colour_stretch_and_the_ranges():
    m = torch.tensor([[0.2, 0.5, 0.8]])
    assert enhancers.stretch(m, torch.tensor(0.2))[0].tolist() == pytest.approx([0.0, 0.5, 1.0])
    raw = torch.tensor([[-5.0, 5.0, 0.0, -1.0, 1.0, 0.0]])
    got = enhancers.in_range(raw)[0].tolist()
    assert got == pytest.approx([0.10, 0.10, 2.0, 0.5, 0.49, 0.245])
    # our ranges reach the identity (the authors' do not: card), so a photo that needs nothing gets nothing
    image = torch.rand(1, 3, 8, 8)
    same = enhancers.piecewise(image, torch.tensor([[0.2, 0.0, 1.0, 1.0, 0.0, 0.0]]))
    assert float((same - image).abs().max()) < 2e-3
    with pytest.raises(ValueError, match="piecewise parameter p must be in"):
        enhancers.Piecewise(0.2, 0.05, 5.0, 0.7, 0.2, 0.2)


def test_photo_filters_tint_and_keep_luma():
    gray = torch.full((3, 4, 4), 0.5)
    luma = torch.tensor(enhancers.LUMA).view(3, 1, 1)
    for name in enhancers.PHOTO_FILTERS:
        out = enhancers.photo_filter(gray, name)
        assert float(((out - gray) * luma).sum(0).abs().max()) < 1e-6
    warm, cool = enhancers.photo_filter(gray, "warming"), enhancers.photo_filter(gray, "cooling")
    assert float(warm[0, 0, 0] - warm[2, 0, 0]) > 0.05 and float(cool[2, 0, 0] - cool[0, 0, 0]) > 0.05


def test_top_k_pooling_averages_the_three_most_probable_positions():
    head = network.TopKHead(2, hidden=4)
    with torch.no_grad():
        head.hidden.weight.zero_(); head.hidden.bias.fill_(1.0)
        head.out.weight.zero_(); head.out.bias.copy_(torch.tensor([0.3, -0.2, 0.0]))
    out = head(torch.zeros(1, network.FEATURE_CHANNELS, 4, 5))
    assert out[0].tolist() == pytest.approx([0.3, -0.2])


def test_crop_boxes_candidates_and_ranking_helpers():
    boxes = network.crop_box(torch.tensor([[5.0, -5.0, 5.0, -5.0]]))
    x, y, w, h = boxes[0].tolist()
    assert (w, h) == pytest.approx((0.999, 0.3)) and x + w <= 1 + 1e-6 and y >= 0
    grid = network.candidate_boxes(1.5, 1.0)
    assert torch.allclose(grid[:, 2] / grid[:, 3], torch.tensor(1.5), atol=1e-3)
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert float(cropping.iou(a, torch.tensor([[0.25, 0.0, 0.5, 0.5]]))[0, 0]) == pytest.approx(1 / 3)
    fitted = cropping.fit_aspect(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), 3 / 2, 4 / 3)
    assert float(fitted[0, 2] * 4 / (fitted[0, 3] * 3)) == pytest.approx(1.5)


def test_recomposition_puts_the_photo_exactly_in_its_frame():
    from training.enhancegan.recompose import KINDS, recompose

    photo = torch.rand(3, 120, 180)
    others = [torch.rand(3, 200, 150), torch.rand(3, 90, 300)]
    for seed, kind in enumerate(KINDS):
        canvas, (x, y, w, h) = recompose(photo, others, kind, seed)
        again, frame = recompose(photo, others, kind, seed)
        assert torch.equal(canvas, again) and frame == (x, y, w, h)
        height, width = canvas.shape[1:]
        assert max(height, width) == 512 and 0 <= x and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
        left, top, pw, ph = round(x * width), round(y * height), round(w * width), round(h * height)
        assert pw / ph == pytest.approx(1.5, rel=0.03)
        inside = canvas[:, top:top + ph, left:left + pw]
        assert float(inside.mean()) == pytest.approx(float(photo.mean()), abs=0.02)


# ---- the product, through the real daemon ---------------------------------------------------------
@installed
def test_shipped_filter_networks_match_the_reference_filters():
    model = models.get("enhancegan")
    model.ensure_loaded("cpu")
    colours = torch.rand(1, 3, 4000, 1, generator=torch.Generator().manual_seed(5))
    for net, name in zip(model.generator.filter_nets, enhancers.PHOTO_FILTERS):
        with torch.no_grad():
            assert float((net(colours) - enhancers.photo_filter(colours, name)).abs().max()) < 0.01


@installed
@pytest.mark.parametrize("method", ["piecewise", "deep-filter"])
def test_enhance_keeps_16_bit_and_the_size_and_follows_the_selection(daemon, photo, method):
    deep = (photo.astype(np.uint16) * 257 // 3 + 4000)      # a flat, dull 16-bit photo
    mask = np.zeros(deep.shape[:2], np.uint8)
    mask[:, :256] = 255
    reply = daemon.client().enhance(deep, method=method)
    assert reply.image.dtype == np.uint16 and reply.image.shape == deep.shape
    assert not np.array_equal(reply.image, deep)
    assert reply.parameters["method"] == method and reply.parameters["label"]
    original = torch.from_numpy(deep.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    if method == "piecewise":
        # the reported curves, applied here, give the daemon's pixels (a 0.26 MP layer: exact, not carried)
        curves = enhancers.Piecewise(**reply.parameters["piecewise"])   # every parameter in its range
        expected = enhancers.piecewise(original, curves.tensor()[None])[0].permute(1, 2, 0).numpy()
        assert np.abs(reply.image / 65535 - expected).max() < 2e-3
    else:
        assert reply.parameters["carried_by_matrix"]["max"] < 0.02
        assert all(0 <= w <= 1 for w in reply.parameters["filter_weights"].values())
    selected = daemon.client().enhance(deep, method=method, mask=mask)
    np.testing.assert_array_equal(selected.image[:, 256:], deep[:, 256:])
    assert np.abs(selected.image[:, :250].astype(np.int32) - reply.image[:, :250]).max() <= 1


@installed
def test_crops_are_ranked_distinct_and_inside_and_keep_an_aspect(daemon, photo):
    reply = daemon.client().crop(photo, count=4)
    crops = reply.summary.crops
    assert len(crops) == 4
    scores = [c.score for c in crops]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    boxes = torch.tensor([[c.x, c.y, c.width, c.height] for c in crops])
    assert float(boxes[:, 0].min()) >= 0 and float((boxes[:, 0] + boxes[:, 2]).max()) <= 1 + 1e-5
    overlap = cropping.iou(boxes, boxes) - torch.eye(4)
    assert float(overlap.max()) <= cropping.OVERLAP + 1e-5
    wide = daemon.client().crop(photo, count=3, aspect_ratio=1.5).summary.crops
    for c in wide:
        assert c.width * 512 / (c.height * 512) == pytest.approx(1.5, rel=0.01)


@installed
def test_the_guide_finds_a_photo_set_in_a_mat(daemon):
    """A real photo set into a flat mat (a kind the guide trained on, but a photo and canvas it never saw)."""
    from skimage import data

    coffee = np.ascontiguousarray(data.coffee())                 # 400 x 600
    canvas = np.full((620, 900, 3), (176, 160, 120), np.uint8)
    canvas[140:540, 200:800] = coffee
    best = daemon.client().crop(canvas, count=1).summary.crops[0]
    found = torch.tensor([[best.x, best.y, best.width, best.height]])
    truth = torch.tensor([[200 / 900, 140 / 620, 600 / 900, 400 / 620]])
    assert float(cropping.iou(found, truth)[0, 0]) >= 0.75


@installed
def test_crop_cli_writes_pixels_json_and_the_best_crop(daemon, tmp_path, photo):
    source, out, boxes = (str(tmp_path / n) for n in ("in.png", "best.png", "crops.json"))
    write_image(source, photo)
    run = subprocess.run([sys.executable, "-m", "backend.cli", "crop", source, "--json", boxes, "--out", out,
                          "--aspect", "3:2", "--count", "3"], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=daemon.env())
    assert run.returncode == 0, run.stderr
    written = json.loads(open(boxes).read())
    best = written["crops"][0]
    assert set(best) == {"x", "y", "width", "height", "score"} and len(written["crops"]) == 3
    assert best["width"] / best["height"] == pytest.approx(1.5, abs=0.02)
    assert read_image(out).shape == (best["height"], best["width"], 3)
    bad = subprocess.run([sys.executable, "-m", "backend.cli", "crop", source, "--aspect", "3:0"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=daemon.env())
    assert bad.returncode == 2 and "aspect" in bad.stderr


@installed
@pytest.mark.parametrize("call, sentence", [
    (("enhance", dict(method="sepia")), "enhancegan has no method 'sepia'"),
    (("enhance", dict(method="piecewise", options={"temperature": "1"})), "no option temperature"),
    (("crop", dict(aspect_ratio=30.0)), "cannot fit this 512 x 512 layer"),
    (("crop", dict(aspect_ratio=-1.0)), "a positive number"),
    (("crop", dict(count=50)), "count must be between 1 and 20"),
])
def test_bad_requests_are_one_sentence_before_any_upload(daemon, photo, call, sentence):
    task, arguments = call
    with pytest.raises(BackendError, match=sentence) as caught:
        getattr(daemon.client(), task)(photo, **arguments)
    assert caught.value.code == "INVALID_ARGUMENT"


@installed
@pytest.mark.parametrize("task", ["enhance", "crop"])
def test_a_layer_smaller_than_the_network_is_refused(daemon, task):
    with pytest.raises(BackendError, match="at least 32 pixels on each side") as caught:
        getattr(daemon.client(), task)(np.zeros((20, 300, 3), np.uint8))
    assert caught.value.code == "INVALID_ARGUMENT"


@installed
def test_cancel_mid_request_frees_the_worker(daemon):
    class GoAway(Exception):
        pass

    def leave(fraction, stage):
        if stage == "applying":
            raise GoAway()
    big = np.random.default_rng(0).integers(0, 65535, (3000, 4000, 3), dtype=np.uint16)
    with pytest.raises(GoAway):
        daemon.client().enhance(big, method="piecewise", on_progress=leave)
    started = time.monotonic()
    daemon.client().crop(np.zeros((64, 64, 3), np.uint8) + 100, count=1)
    assert time.monotonic() - started < 10.0
