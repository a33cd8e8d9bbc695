"""The seam every model shares: typed requests, the pipeline in the base, the parameter values of
backend/imaging, and the edge-aware application of an adjustment map."""

import os
import re

import numpy as np
import pytest
import torch
from google.protobuf import json_format

from backend import models, styles
from backend.imaging import color, mixing, transforms, upsample
from backend.imaging.crops import CropBox, CropBoxes
from backend.imaging.curves import ToneCurves
from backend.transport import requests as decoding, schema

HERE = os.path.dirname(os.path.abspath(__file__))
installed = pytest.mark.skipif(not models.get("sa-adjust").installed(), reason="sa-adjust weights are not installed")
STACK = {"filters": [{"name": "exposure", "values": [0.4]}, {"name": "saturation", "values": [0.3]},
                     {"name": "tone", "values": [1.0, 1.2, 0.9, 1.1, 1, 1, 1, 1]}]}


def run(model, kind, setup, image, mask=None):
    """One request the way the daemon serves it: setup decoded and checked, then the base pipeline."""
    setup.image.width, setup.image.height = image.shape[1], image.shape[0]
    if mask is not None:
        setup.mask.channels = mask.shape[2]
    request = decoding.decode(kind, setup)
    request.image, request.mask = image, mask
    model.check(request)
    return {image.role: image.pixels for image in model.run(request, "cpu").images}


@installed
@pytest.mark.slow
def test_sa_adjust_and_filters_through_the_seam_give_the_pre_seam_outputs(photo, coffee, monkeypatch):
    """With the edge-aware map switched off (the one change made on purpose), every product path gives what
    the code before the seam gave on the bundled photos (tests/data: crops of its outputs, made by it).
    Re-recorded for issue 19's retrained sa-adjust weights and watercolor's strokes carried as colour maps
    (the filters' crops came out bit for bit the same when re-recording, so the harness is unchanged), and
    again for session 14's 3000-step weights and session 16's colour-context weights (only the sa-adjust crops
    re-recorded)."""
    monkeypatch.setattr(mixing, "EDGE_RADIUS", 0)
    expected = np.load(os.path.join(HERE, "data", "pre_seam_outputs.npz"))
    selection = np.zeros(photo.shape[:2] + (1,), np.uint8)
    selection[100:400, 150:350] = 255
    sa, outputs = models.get("sa-adjust"), {}
    sa.ensure_loaded("cpu")
    for style in styles.LOCAL:
        cases = {"plain": (schema.AdjustSetup(style=style, return_maps=True), photo, None),
                 "strength": (schema.AdjustSetup(style=style, options={"strength": "0.5"}), coffee, None),
                 "selection": (schema.AdjustSetup(style=style), photo, selection),
                 "personal": (schema.AdjustSetup(style=style, mask_role=schema.ADJUSTMENT_MAP, selected_preset=1,
                                                  unselected_preset=0), photo, selection),
                 "u16": (schema.AdjustSetup(style=style), photo.astype(np.uint16) * 257, None)}
        for case, (setup, image, mask) in cases.items():
            for role, pixels in run(sa, "adjust", setup, image, mask).items():
                outputs["%s/%s|%s" % (style, case, role)] = pixels
    filters = models.get("filters")
    for case, mask in (("plain", None), ("mask", selection)):
        setup = schema.FiltersSetup()
        json_format.ParseDict(STACK, setup.stack)
        outputs["filters/%s|result" % case] = run(filters, "filters", setup, photo, mask)["result"]
    if os.environ.get("SE_RERECORD_PRE_SEAM"):   # after a retraining: SE_RERECORD_PRE_SEAM=1 pytest -k pre_seam
        np.savez_compressed(os.path.join(HERE, "data", "pre_seam_outputs.npz"), **{
            key: np.stack([pixels[160:224, 160:224], pixels[300:364, 260:324]]) for key, pixels in outputs.items()})
        pytest.skip("re-recorded")
    assert sorted(outputs) == sorted(expected.files)
    for key, pixels in outputs.items():
        crops = np.stack([pixels[160:224, 160:224], pixels[300:364, 260:324]])
        # the same to one 8-bit code: float sums differ in their last bits between CPUs (AVX2 and AVX-512
        # kernels), which moves a few pixels by a code and, in watercolor, a few brush-region edges
        assert crops.dtype == expected[key].dtype, key
        code = 257 if crops.dtype == np.uint16 else 1
        off = np.abs(crops.astype(np.int64) - expected[key].astype(np.int64)) > code
        assert off.mean() < 0.002, (key, off.mean())


def test_requests_are_decoded_once_into_typed_values():
    setup = schema.AdjustSetup(style="watercolor", options={"strength": "0.25"}, mask_role=schema.ADJUSTMENT_MAP,
                               selected_preset_name="background")
    setup.image.width, setup.image.height, setup.mask.channels = 40, 30, 1
    request = decoding.decode("adjust", setup)
    assert (request.strength, request.options, request.mask_role, request.personal) == (0.25, {}, "adjustment-map", True)
    assert (request.selected_preset, request.unselected_preset, request.width, request.height) == ("background", None, 40, 30)
    assert models.get("sa-adjust").presets(request) == (1, 1)  # background named; unselected: the style's default
    numbers = decoding.decode("adjust", schema.AdjustSetup(style="local-xpro", selected_preset=3, unselected_preset=0))
    assert (numbers.selected_preset, numbers.unselected_preset) == (3, 0)
    defaults = decoding.decode("adjust", schema.AdjustSetup(style="local-xpro"))
    assert models.get("sa-adjust").presets(defaults) == (0, 3)  # subject where selected, background elsewhere
    for bad in ("2", "-1", "nan", "much"):
        with pytest.raises(ValueError, match="strength is a number from 0 to 1"):
            decoding.decode("adjust", schema.AdjustSetup(style="watercolor", options={"strength": bad}))
    filters = schema.FiltersSetup()
    json_format.ParseDict(STACK, filters.stack)
    stack = decoding.decode("filters", filters).filter_stack
    assert [f.name for f, _ in stack] == ["exposure", "saturation", "tone"]
    assert stack.to_json()["filters"][0]["label"] == "Exposure +0.40 EV"
    with pytest.raises(ValueError, match="unknown filter 'blur'"):
        bad = schema.FiltersSetup()
        bad.stack.filters.add(name="blur")
        decoding.decode("filters", bad)


def test_models_never_read_protobuf():
    root = os.path.join(HERE, os.pardir, "backend", "models")
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as handle:
                    text = handle.read()
                assert not re.search(r"^\s*(from|import)\s+\S*(protobuf|transport)|\bsetup\.", text, re.M), name


def test_the_style_registry_is_the_one_list():
    from training.data import cli as data_cli, styles as programs
    from training.sa_adjust import cli as sa_cli

    assert tuple(programs.PROGRAMS) == tuple(styles.STYLES) == data_cli.STYLE_NAMES
    assert sa_cli.SA_STYLES == styles.LOCAL == models.get("sa-adjust").styles
    from backend.models import fcn_stylize

    assert set(fcn_stylize.builtin_styles()) <= set(styles.STYLES)  # the paper's FCN serves registry styles only
    for style in styles.STYLES.values():
        assert style.local == bool(style.presets)
        if style.presets:
            assert {style.selected, style.unselected} <= set(style.presets)
    with pytest.raises(ValueError, match="style 'local-xpro' has no preset 'sun'; its presets are: subject, sky"):
        styles.get("local-xpro").preset_index("sun")


@installed
@pytest.mark.slow
def test_preset_names_say_where_each_preset_applies():
    """Each name is checked on the shipped weights: the "subject" channel of the predicted map is the one
    that follows the salient foreground of the photos, "sky" the sky, "vegetation" the vegetation."""
    from training.sa_adjust import presets

    photos = presets.probe_photos()
    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    for name in styles.LOCAL:
        style, net = styles.get(name), model.nets[name]
        correlation = presets.correlations(net, photos)
        expect = {"foreground": "subject", "sky": "sky", "vegetation": "vegetation"}
        for cue, preset in expect.items():
            if preset in style.presets:
                best = int(np.argmax(correlation[cue]))
                assert style.presets[best] == preset, (name, cue, correlation[cue])
        # pop-out and watercolor blend by the foreground cue itself; local-xpro's program has no subject (its
        # regions are sky, vegetation, people, the rest), so its "subject" need only follow it clearly
        floor = 0.25 if name == "local-xpro" else 0.5
        assert correlation["foreground"][style.presets.index("subject")] > floor, (name, correlation)


def test_the_edge_aware_map_follows_the_full_resolution_edge_where_bilinear_leaves_a_band():
    """A subject edge that the 64 px view blurs: the map carried by the guided filter switches within a few
    full-resolution pixels of the photo's edge; bilinear upsampling leaves a wide band of the wrong preset."""
    height, width, edge = 64, 640, 333
    full = torch.zeros(3, height, width)
    full[0, :, :edge], full[2, :, edge:] = 0.8, 0.7  # red subject | blue sky, a step between two pixels
    full += torch.linspace(0, 0.05, width)  # a little shading: the guide is not two flat colours
    low = upsample.downscale(full, 64)
    subject = (low[0, 0] > 0.4).float()
    blurred = torch.nn.functional.avg_pool2d(subject[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
    soft_map = torch.stack([blurred, 1 - blurred])  # (2, h, w): what a network's map looks like
    guided = mixing.evaluate_map(mixing.guided_map(low, soft_map, radius=4), full)
    bilinear = upsample.upsample_bilinear(soft_map[None], height, width)[0]
    row = height // 2
    assert torch.allclose(guided.sum(0), torch.ones(height, width), atol=1e-5)
    near = slice(edge - 40, edge), slice(edge, edge + 40)  # 4 pixels of the view on either side
    assert guided[0, row, edge - 1] - guided[0, row, edge] > 0.75  # the whole switch between two pixels
    assert guided[0, row, near[0]].min() > 0.8 and guided[0, row, near[1]].max() < 0.1
    assert bilinear[0, row, near[0]].min() < 0.5 and bilinear[0, row, near[1]].max() > 0.35  # a 40 px ramp


@installed
def test_the_subject_preset_spills_less_into_the_sky_around_the_pagoda():
    """scikit-learn's china.jpg under Foreground Pop-Out: the applied map's subject weight on the sky next
    to the roof stays low and the open sky takes at most a faint glow, with the edge-aware map no worse than
    the bilinear one. Before issue 19 the network had learnt the targets' halo (0.69 bilinear -> 0.56
    edge-aware next to the roof, 0.17 -> 0.19 on the rest) and this test asked the filter for a 15 % drop;
    trained on the edge-following targets it predicts little halo to remove (0.16 -> 0.14, 0.003 -> 0.013)."""
    from sklearn.datasets import load_sample_image

    from backend.imaging import pixels
    from backend.models import sa_adjust as sa
    from backend.models.base import View

    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    rgb = torch.from_numpy(np.array(load_sample_image("china.jpg"))).permute(2, 0, 1).float() / 255
    lab = color.rgb_to_lab(rgb[None])[0]
    sky = (lab[0] > 60) & (lab[1:].norm(dim=0) < 25) & (lab[2] < 0)
    sky[200:], sky[:, :130], sky[:, 330:] = False, False, False  # around the roof
    near_roof = torch.nn.functional.max_pool2d((~sky).float()[None, None], 17, 1, 8)[0, 0].bool() & sky
    maps = sa.predict_maps(model.nets["foreground-pop-out"], View(pixels.Layer(rgb, None, None, 3, "perceptual")))
    subject = {}
    for radius in (0, None):
        maps.edge_radius = radius
        weights = maps.full_resolution_map(rgb)[0]
        subject[radius] = (float(weights[near_roof].mean()), float(weights[sky & ~near_roof].mean()))
    assert near_roof.sum() > 3000
    assert subject[None][0] < 0.25 and subject[None][0] <= subject[0][0] + 0.02, subject
    assert subject[None][1] < 0.05 and subject[None][1] < subject[0][1] + 0.05, subject


def test_quadratic_lab_transforms_are_zhu_and_yus_basis_applied_per_pixel():
    torch.manual_seed(0)
    image = torch.rand(3, 37, 45) * 0.9 + 0.05
    matrix = torch.zeros(3, 10)
    matrix[:, 6:9] = torch.eye(3)  # the identity: the L, a, b terms are 6, 7, 8
    matrix += torch.randn(3, 10) * 0.03
    coefficients = matrix.reshape(1, 30, 1, 1).expand(1, 30, 5, 6).contiguous()
    maps = transforms.ColourTransformMaps(coefficients, basis="quadratic-lab")
    out = transforms.apply_colour_transforms(image, maps, rows=8)
    lab = color.rgb_to_lab(image[None])[0] / 100
    expected = color.lab_to_rgb((torch.einsum("ct,thw->chw", matrix, color.quadratic_lab_basis(lab)) * 100)[None])[0]
    assert (out - expected).abs().max() < 1e-4
    identity = transforms.ColourTransformMaps(transforms.identity_coefficients((3, 3), "quadratic-lab"),
                                              basis="quadratic-lab")
    assert (transforms.apply_colour_transforms(image, identity) - image).abs().max() < 1e-4
    with pytest.raises(ValueError, match="not a whole number of quadratic-lab presets"):
        transforms.ColourTransformMaps(torch.zeros(1, 12, 2, 2), basis="quadratic-lab")


def test_strength_and_selection_blend_every_parameter_type_the_same_way():
    torch.manual_seed(1)
    image = torch.rand(3, 20, 24)
    selection = torch.zeros(1, 20, 24)
    selection[:, :, 12:] = 1.0
    gain = torch.tensor([[1.2, 0, 0, 0], [0, 0.8, 0, 0.1], [0, 0, 1.0, -0.05]]).reshape(1, 12, 1, 1)
    full = transforms.apply_colour_transforms(image, transforms.ColourTransformMaps(gain.expand(1, 12, 4, 4)))
    half = transforms.apply_colour_transforms(image, transforms.ColourTransformMaps(gain.expand(1, 12, 4, 4)),
                                              mixing.Mix(strength=0.5, selection=selection))
    assert torch.allclose(half[:, :, :12], image[:, :, :12])
    assert torch.allclose(half[:, :, 12:], (image + full)[:, :, 12:] / 2, atol=1e-6)
    curves = ToneCurves.from_function(lambda x: x ** 2)
    curved = curves.apply(image.clone(), mixing.Mix(selection=selection))
    assert torch.allclose(curved[:, :, :12], image[:, :, :12])
    assert torch.allclose(curved[:, :, 12:], image[:, :, 12:] ** 2, atol=1e-4)


def test_tone_curves_are_resolution_free_lookups():
    image = torch.rand(3, 50, 70)
    assert torch.allclose(ToneCurves.identity().apply(image.clone()), image, atol=1e-6)
    assert torch.allclose(ToneCurves.identity(space="lab").apply(image.clone()), image, atol=1e-4)
    darker = ToneCurves.from_function(lambda x: x * 0.5, knots=3)
    assert torch.allclose(darker.apply(image.clone()), image * 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="tone curves are 3 channels"):
        ToneCurves(torch.zeros(2, 8))


def test_crop_boxes_rank_round_and_fit_an_aspect_ratio():
    boxes = CropBoxes([CropBox(0.1, 0.1, 0.5, 0.5, score=0.2), CropBox(0.0, 0.25, 1.0, 0.5, score=0.9)])
    assert [box.score for box in boxes] == [0.9, 0.2]
    assert boxes.to_json(600, 400)["crops"][0] == {"x": 0, "y": 100, "width": 600, "height": 200, "score": 0.9}
    square = boxes[0].fit_aspect(1.0, 600, 400)
    pixels = square.in_pixels(600, 400)
    assert pixels["width"] == pixels["height"] == 200 and pixels["x"] == 200
    with pytest.raises(ValueError, match="a crop box lies inside the image"):
        CropBox(0.8, 0.0, 0.5, 0.5)


def test_the_client_and_the_cli_client_commands_load_neither_torch_nor_the_server():
    """`semantic-enhance models` and a batch script's `from backend.client import Client` stay light: what
    they import is measured by training/bench/startup.py, what they must not import is checked here."""
    import subprocess
    import sys

    probe = ("import sys, backend.client, backend.cli as cli\n"
             "cli.main(['models', '--addr', '127.0.0.1:1', '--token-file', '/dev/null'])\n"
             "print(sorted(m for m in ('torch', 'backend.transport.server', 'backend.models', 'backend.jobs') "
             "if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=os.path.join(HERE, os.pardir), capture_output=True,
                         text=True, timeout=60)
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout + run.stderr
    assert "cannot reach the Semantic Enhance daemon" in run.stderr


def test_a_streamed_pointwise_model_reports_the_layers_progress_not_each_bands():
    from backend.imaging import pixels

    class Job:
        def __init__(self):
            self.fractions = []

        def progress(self, fraction, stage):
            self.fractions.append(fraction)

    setup = schema.FiltersSetup()
    json_format.ParseDict(STACK, setup.stack)
    setup.image.width, setup.image.height = 40, 300
    request = decoding.decode("filters", setup)
    request.job = Job()
    image = np.random.default_rng(0).integers(0, 256, (300, 40, 3), dtype=np.uint8)
    bands = (pixels.decode(image[top:top + 64]) for top in range(0, 300, 64))
    rows = []
    models.get("filters").run_rows(request, bands, rows.append)
    assert np.concatenate(rows).shape == image.shape
    assert request.job.fractions == sorted(request.job.fractions) and len(request.job.fractions) == 6
