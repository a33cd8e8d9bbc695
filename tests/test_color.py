import numpy as np
import pytest
import torch

from backend.imaging import color


def column(*rgb):
    return torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1)


@pytest.mark.parametrize("rgb, lab", [
    ((1, 1, 1), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((1, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 1, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 1), (32.2970, 79.1875, -107.8602)),
    ((0.5, 0.5, 0.5), (53.3890, 0.0, 0.0)),
])
def test_lab_of_pure_colours(rgb, lab):
    got = color.rgb_to_lab(column(*rgb)).flatten().numpy()
    np.testing.assert_allclose(got, lab, atol=2e-3)


def test_every_8bit_colour_round_trips_through_lab_within_a_code_value():
    levels = torch.arange(0, 256, 5, dtype=torch.float32) / 255
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    rgb = torch.stack([r, g, b]).reshape(3, -1, 1)
    back = color.lab_to_rgb(color.rgb_to_lab(rgb))
    assert (back - rgb).abs().max().item() < 0.5 / 255


def test_linear_round_trip_and_known_value():
    x = torch.linspace(0, 1, 1001).view(1, 1, -1).expand(3, 1, -1)
    assert (color.linear_to_srgb(color.srgb_to_linear(x)) - x).abs().max() < 1e-5
    assert abs(color.srgb_to_linear(torch.tensor(0.5)).item() - 0.21404) < 1e-4


def test_luminance_weights_are_the_papers():
    assert color.luminance(column(1, 0, 0)).item() == pytest.approx(0.27)
    assert color.luminance(column(1, 1, 1)).item() == pytest.approx(1.0)


def test_quadratic_basis_terms():
    basis = color.quadratic_lab_basis(column(2.0, 3.0, 5.0)).flatten().tolist()
    assert basis == [4, 9, 25, 6, 10, 15, 2, 3, 5, 1]
