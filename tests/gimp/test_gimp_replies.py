"""In a real GIMP 3: every kind of daemon reply becomes the right GIMP items (one GIMP start).

The learned models are not hosted by the real daemon yet, so tests/gimp/fake_daemon.py answers with
known outputs over the real contract: the result layer, K adjustment maps, ranked crop boxes, step
images with labelled filters. test_gimp_e2e.py checks the same entries against the real daemon.
"""

import os

import numpy as np
import pytest

import harness
from fake_daemon import CROPS, SCORES, FakeDaemon

pytestmark = [pytest.mark.gimp, pytest.mark.skipif(harness.missing_reason() is not None,
                                                   reason=harness.missing_reason() or "")]

P = "plug-in-semantic-enhance-"
PHOTO = "/data/photo.png"
CANVAS = [600, 560, 30, 20]  # the 512x512 layer sits at (30, 20) on a larger canvas
ELLIPSE = {"kind": "ellipse", "box": [120, 110, 240, 180], "feather": 24}


def cases():
    return [
        {"id": "adjust", "file": PHOTO, "procedure": P + "adjust", "canvas": CANVAS, "select": ELLIPSE,
         "args": {"model": "sa-adjust", "style": "local-xpro"}},
        {"id": "adjust_u16", "file": PHOTO, "procedure": P + "adjust", "precision": "U16_NON_LINEAR",
         "args": {"model": "fcn-stylize", "style": "cold"}},
        {"id": "maps", "file": PHOTO, "procedure": P + "maps", "canvas": CANVAS, "args": {"model": "sa-adjust"}},
        {"id": "personalize_maps", "file": PHOTO, "procedure": P + "personalize", "canvas": CANVAS,
         "before": [{"procedure": P + "maps"}], "args": {"source": "maps"}},
        {"id": "personalize_channel", "file": PHOTO, "procedure": P + "personalize", "extra_channel": "left half",
         "args": {"source": "channel", "channel": "left half", "selected-preset": "2", "unselected-preset": "0"}},
        {"id": "personalize_no_selection", "file": PHOTO, "procedure": P + "personalize", "args": {}},
        {"id": "aesthetic", "file": PHOTO, "procedure": P + "aesthetic", "args": {"method": "deep-filter"}},
        {"id": "crop", "file": PHOTO, "procedure": P + "crop", "canvas": CANVAS, "args": {"count": 3}},
        {"id": "crop_apply", "file": PHOTO, "procedure": P + "crop", "args": {"count": 1, "apply-crop": True}},
        {"id": "progressive", "file": PHOTO, "procedure": P + "progressive", "canvas": CANVAS,
         "args": {"steps": 3, "editable-filters": True}},
        {"id": "score", "file": PHOTO, "procedure": P + "score", "canvas": CANVAS, "precision": "U16_NON_LINEAR"},
    ]


@pytest.fixture(scope="module", autouse=True)
def run_folders():
    yield
    harness.cleanup_runs()


@pytest.fixture(scope="module")
def replies(photo):
    from PIL import Image
    os.makedirs(harness.DATA, exist_ok=True)
    Image.fromarray(photo).save(os.path.join(harness.DATA, "photo.png"))
    harness.install_plugin()
    with FakeDaemon() as fake:
        return harness.run_cases(cases(), harness.daemon_env(fake.address, "/data/no-token"))


def load(record, name):
    return np.load(os.path.join(record["folder"], name))


def ok(record):
    assert record["status"] == "success", record["message"]
    assert np.array_equal(load(record, "before.npy"), load(record, "after.npy")), "the original layer changed"
    return record


def brighter(before, amount, top):
    out = before.astype(np.float64)
    out[..., :3] = np.clip(out[..., :3] + amount * top, 0, top)
    return out.astype(before.dtype)


def test_adjust_result_layer_sits_over_the_source_with_its_parameters(replies):
    record = ok(replies["adjust"])
    layer = record["layers"][0]
    assert layer["name"] == "Auto Adjust: local-xpro (sa-adjust)"
    assert (layer["width"], layer["height"], layer["offset"]) == (512, 512, [30, 20])
    daemon = layer["parasite"]["daemon"]
    assert daemon["mask_channels"] == 1 and daemon["mask_role"] == 1  # the selection went as a BLEND mask
    assert layer["parasite"]["style"] == "local-xpro" and layer["parasite"]["model"] == "sa-adjust"
    assert np.array_equal(load(record, layer["npy"]), brighter(load(record, "before.npy"), 0.2, 255))


def test_adjust_keeps_16_bits(replies):
    record = ok(replies["adjust_u16"])
    result, before = load(record, record["layers"][0]["npy"]), load(record, "before.npy")
    assert result.dtype == np.uint16
    assert np.abs(result.astype(int) - brighter(before, 0.2, 65535).astype(int)).max() <= 1


def test_maps_become_named_canvas_channels_under_the_layer(replies):
    record = ok(replies["maps"])
    assert [c["name"] for c in record["channels"]] == ["Adjustment map 0: sky", "Adjustment map 1: person",
                                                       "Adjustment map 2: everything else"]
    ramp = load(record, "channel0.npy")[..., 0]
    assert ramp.shape == (560, 600)
    assert (ramp[:, :30] == 0).all() and (ramp[:20] == 0).all()  # off the layer: nothing
    assert ramp[200, 30] <= 1 and ramp[200, 30 + 511] >= 254   # the map's ramp, placed at the layer
    assert len(record["layers"]) == 1  # channels only, no new layer


def test_personalize_with_painted_maps_sends_all_k(replies):
    record = ok(replies["personalize_maps"])
    layer = record["layers"][0]
    assert layer["name"].startswith("Personalized: ")
    assert layer["parasite"]["daemon"]["mask_channels"] == 3 and layer["parasite"]["daemon"]["mask_role"] == 2
    assert layer["parasite"]["map_source"] == "maps"
    assert layer["parasite"]["style"] == "foreground-pop-out"  # no style given: the model's first, as listed


def test_personalize_with_a_channel_and_presets(replies):
    record = ok(replies["personalize_channel"])
    daemon = record["layers"][0]["parasite"]["daemon"]
    assert (daemon["mask_channels"], daemon["mask_role"]) == (1, 2)
    assert (daemon["selected_preset"], daemon["unselected_preset"]) == (2, 0)


def test_personalize_without_a_selection_says_what_to_do(replies):
    record = replies["personalize_no_selection"]
    assert record["status"] == "execution-error" and "Select the area first" in record["message"]
    assert len(record["layers"]) == 1


def test_aesthetic_layer_name(replies):
    record = ok(replies["aesthetic"])
    assert record["layers"][0]["name"] == "Aesthetic Enhance: deep filtering"


def test_crop_guides_selection_and_alternative_paths(replies):
    record = ok(replies["crop"])
    x, y = 30 + round(CROPS[0][0] * 512), 20 + round(CROPS[0][1] * 512)
    w, h = round(CROPS[0][2] * 512), round(CROPS[0][3] * 512)
    assert sorted(record["guides"]) == sorted([["horizontal", y], ["horizontal", y + h],
                                               ["vertical", x], ["vertical", x + w]])
    assert record["selection_bounds"] == [x, y, x + w, y + h]
    assert [p["name"] for p in record["paths"]] == ["Crop alternative 2 (score 0.80)",
                                                    "Crop alternative 3 (score 0.70)"]
    assert record["image_parasite"]["crops"][0][:4] == [x, y, w, h]
    assert record["canvas"] == [600, 560] and len(record["layers"]) == 1


def test_crop_can_apply_the_best_box(replies):
    record = replies["crop_apply"]
    assert record["status"] == "success", record["message"]
    assert record["canvas"] == [round(CROPS[0][2] * 512), round(CROPS[0][3] * 512)]


def test_progressive_group_one_layer_per_step_result_on_top(replies):
    record = ok(replies["progressive"])
    group = record["layers"][0]
    assert group["group"] and group["name"] == "Progressive Enhance"
    names = [child["name"] for child in group["children"]]
    assert names == ["Progressive result", "Editable filters (approximate)", "Contrast +0.20", "Gamma 1.10",
                     "Exposure +0.42 EV"]
    assert [child["visible"] for child in group["children"]] == [True, False, False, False, False]
    editable = group["children"][1]
    assert [operation for _, operation, _ in editable["filters"]] == ["gegl:exposure", "gegl:brightness-contrast"]
    assert editable["filters"][1][2]["contrast"] == pytest.approx(1 + 0.5708 * 0.2)
    assert editable["parasite"]["left_out"] == ["Gamma 1.10"]
    assert all(child["offset"] == [30, 20] and child["width"] == 512 for child in group["children"])
    labels = [f["label"] for f in group["parasite"]["filter_stack"]["filters"]]
    assert labels == ["Exposure +0.42 EV", "Gamma 1.10", "Contrast +0.20"]
    before = load(record, "before.npy")
    assert np.array_equal(load(record, group["children"][4]["npy"]), brighter(before, 0.05, 255))
    assert np.array_equal(load(record, editable["npy"])[..., :3], before[..., :3])  # the filters do the work
    assert np.array_equal(load(record, group["children"][0]["npy"]), brighter(before, 0.15, 255))


def test_score_shows_every_score_in_words_and_changes_nothing(replies):
    record = ok(replies["score"])
    report = record["report"]
    assert report["text"] == "\n".join([
        'Scores of the layer "%s":' % record["layers"][0]["name"],
        "Aesthetic score 6.8 of 10 (critic: higher is better; most likely 7)",
        "BRISQUE 23.4 (naturalness: lower is better, 0–100)",
        "sharpness 0.531"])
    assert [(score["name"], score["value"]) for score in report["scores"]] == [
        (name, pytest.approx(value, abs=1e-4)) for name, value, _ in SCORES]
    kept = record["image_parasites"]["semantic-enhance-score"]
    assert kept["text"] == report["text"] and kept["daemon"] == {"sample": "uint16", "size": [512, 512],
                                                                 "channels": 3}
    assert record["reloaded_image_parasites"] == record["image_parasites"]
    assert len(record["layers"]) == 1 and record["layers"][0]["parasite"] is None
    assert record["channels"] == [] and record["guides"] == [] and record["paths"] == []
    assert record["canvas"] == [600, 560] and report["layers"] == []
