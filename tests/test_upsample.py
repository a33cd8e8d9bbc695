import numpy as np
import torch
import torch.nn.functional as F

from backend.imaging import upsample


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
    out = upsample.apply_affine_full(full, coeffs, rows=64)
    expected = torch.einsum("ij,jhw->ihw", matrix[:, :3], full) + matrix[:, 3].view(3, 1, 1)
    assert (out - expected).abs().max().item() < 2e-3


def test_edges_stay_sharp_when_a_low_res_mapping_is_applied_at_full_resolution():
    full = torch.zeros(3, 512, 512)
    full[:, :, 256:] = 0.8  # a hard vertical edge at full resolution
    full += torch.linspace(0, 0.1, 512).view(1, 512, 1)  # a vertical ramp the network sees only coarsely
    low = upsample.downscale(full, 64)
    low_out = 1.0 - low  # invert: a mapping that is easy to verify
    out = upsample.apply_affine_full(full, upsample.fit_local_affine(low, low_out), rows=100)
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
