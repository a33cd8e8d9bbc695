import numpy as np
import torch
import torch.nn.functional as F

from backend.imaging import upsample
from backend.imaging.mixing import Mix
from backend.imaging.transforms import ColourTransformMaps, apply_colour_transforms


def smooth_image(h, w, seed=0):
    torch.manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, 6, 8), size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_a_global_affine_colour_map_is_recovered_and_applied_exactly_at_full_resolution():
    matrix = torch.tensor([[0.9, 0.1, 0.0, 0.05], [0.0, 1.1, 0.0, -0.02], [0.05, 0.0, 0.8, 0.1]])
    full = smooth_image(400, 600)[0]
    low = upsample.downscale(full, 128)
    assert low.shape[-2:] == (85, 128)
    low_out = torch.einsum("ij,bjhw->bihw", matrix[:, :3], low) + matrix[:, 3].view(1, 3, 1, 1)
    coeffs = upsample.fit_local_affine(low, low_out)
    out = apply_colour_transforms(full, ColourTransformMaps(coeffs), rows=64)
    expected = torch.einsum("ij,jhw->ihw", matrix[:, :3], full) + matrix[:, 3].view(3, 1, 1)
    assert (out - expected).abs().max().item() < 2e-3


def test_edges_stay_sharp_when_a_low_res_mapping_is_applied_at_full_resolution():
    full = torch.zeros(3, 512, 512)
    full[:, :, 256:] = 0.8  # a hard vertical edge at full resolution
    full += torch.linspace(0, 0.1, 512).view(1, 512, 1)  # a vertical ramp the network sees only coarsely
    low = upsample.downscale(full, 64)
    low_out = 1.0 - low  # invert: a mapping that is easy to verify
    out = apply_colour_transforms(full, ColourTransformMaps(upsample.fit_local_affine(low, low_out)), rows=100)
    expected = 1.0 - full
    # away from the edge the inversion is exact to a few code values, and across it the step stays one pixel wide
    assert (out[:, :, :240] - expected[:, :, :240]).abs().max() < 0.02
    assert (out[:, :, 272:] - expected[:, :, 272:]).abs().max() < 0.02
    step = out[0, 256, 250:262]
    assert (step[:6] - step[6:]).abs().min() > 0.5 and (step[5] - step[6]).abs() > 0.5


def test_bilinear_rows_match_torch_interpolate():
    maps = torch.rand(1, 5, 7, 9)
    whole = F.interpolate(maps, size=(31, 45), mode="bilinear", align_corners=False)[0]
    band = upsample.bilinear_rows(maps, 31, 45, 10, 20)
    assert torch.allclose(band, whole[:, 10:20], atol=1e-5)


def test_network_size_keeps_aspect_and_never_upscales():
    assert upsample.network_size(4000, 6000) == (341, 512)
    assert upsample.network_size(100, 80) == (100, 80)


def reference_affine(image, coeffs, weights_low=None, weights_full=None):
    """Straightforward full-resolution application in float64: resize every map to (H, W), mix, apply."""
    height, width = image.shape[1:]
    resize = lambda maps: F.interpolate(maps.double(), size=(height, width), mode="bilinear", align_corners=False)[0]
    c = resize(coeffs)
    k = c.shape[0] // 12
    if k > 1:
        weights = resize(weights_low.unsqueeze(0)) if weights_low is not None else 1.0
        if weights_full is not None:
            weights = weights * weights_full.double()
        c = (c.view(k, 12, height, width) * weights.unsqueeze(1)).sum(0)
    a = c.view(3, 4, height, width)
    return (a[:, :3] * image.double().unsqueeze(0)).sum(1) + a[:, 3]


def test_full_resolution_application_matches_resizing_the_maps_to_full_resolution():
    torch.manual_seed(3)
    tolerance = 5e-5  # float32 sampling positions vs float64 ones, on maps far rougher than real ones
    # odd sizes, single rows and columns, maps smaller and larger than the image, bands that do not divide it
    for (height, width), (h, w), rows in [((37, 53), (11, 17), 32), ((37, 53), (50, 70), 7), ((1, 53), (5, 9), 32),
                                           ((53, 1), (4, 1), 5), ((40, 30), (1, 1), 16), ((64, 96), (64, 96), 32)]:
        image = torch.rand(3, height, width)
        coeffs = torch.rand(1, 12, h, w) * 2 - 0.5
        expected = reference_affine(image, coeffs)
        assert (apply_colour_transforms(image, ColourTransformMaps(coeffs), rows=rows) - expected).abs().max() < tolerance
        # K = 3 presets mixed by low-resolution weights (a bilinear map) or full-resolution ones (a user's
        # map), written into out=, with progress
        coeffs = torch.rand(1, 36, h, w) * 2 - 0.5
        weights_low, weights_full = torch.rand(3, h, w), torch.rand(3, height, width)
        for low, full in [(weights_low, None), (None, weights_full)]:
            out = torch.full_like(image, float("nan"))
            progress = []
            maps = ColourTransformMaps(coeffs, adjustment_map=low, edge_radius=0)
            result = apply_colour_transforms(image, maps, Mix(user_map=full), rows=rows, out=out,
                                             on_progress=progress.append)
            assert result is out and progress[-1] == 1.0
            if low is not None:  # a bilinear map mixes the presets at low resolution (as the product did before)
                expected = reference_affine(image, (coeffs.view(3, 12, h, w) * low.unsqueeze(1)).sum(0)[None])
            else:
                expected = reference_affine(image, coeffs, None, full)
            assert (out - expected).abs().max() < tolerance


def test_rows_in_twos_read_the_maps_at_their_centre_and_stay_near_exact_slicing_of_smooth_maps():
    """``share_rows`` 2 (carry_pointwise's fitted maps): each run of two rows gets the maps' bilinear slice at
    the run's centre (the maps resized to half the height, each row doubled); a selection blends as usual."""
    torch.manual_seed(4)
    for height, width in [(64, 45), (63, 45)]:  # an even and an odd height (a last run of one row)
        image = torch.rand(3, height, width)
        coeffs = torch.rand(1, 12, 8, 6) * 2 - 0.5
        got = apply_colour_transforms(image, ColourTransformMaps(coeffs), share_rows=2)
        runs = -(-height // 2)
        halves = F.interpolate(coeffs.double(), size=(runs, width), mode="bilinear", align_corners=False)
        a = halves.repeat_interleave(2, dim=2)[0, :, :height].view(3, 4, height, width)
        expected = (a[:, :3] * image.double().unsqueeze(0)).sum(1) + a[:, 3]
        assert (got - expected).abs().max() < 5e-5
        selection = torch.rand(1, height, width)
        mixed = apply_colour_transforms(image, ColourTransformMaps(coeffs), Mix(strength=0.5, selection=selection),
                                        share_rows=2)
        assert (mixed - torch.lerp(image, got, 0.5 * selection)).abs().max() < 5e-5
    # each row reads the maps half a row from its own place: off by at most half a row's change of the maps
    # times |r| + |g| + |b| + 1
    image = torch.rand(3, 96, 64)
    coeffs = torch.rand(1, 12, 12, 8) * 2 - 0.5
    full = F.interpolate(coeffs.double(), size=(96, 64), mode="bilinear", align_corners=False)
    bound = 0.5 * (full[:, :, 1:] - full[:, :, :-1]).abs().max() * 4
    error = (apply_colour_transforms(image, ColourTransformMaps(coeffs), share_rows=2) - reference_affine(image, coeffs)).abs()
    assert 0 < error.max() <= bound
