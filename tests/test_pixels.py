import numpy as np
import pytest
import torch

from backend.imaging import pixels


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_integer_layers_round_trip_exactly_with_alpha_untouched(dtype, top, channels):
    rng = np.random.default_rng(0)
    samples = rng.integers(0, top + 1, size=(7, 9, channels)).astype(dtype)
    layer = pixels.decode(samples)
    assert layer.rgb.shape == (3, 7, 9)
    back = pixels.encode(layer.rgb, layer)
    assert back.dtype == dtype and back.shape == samples.shape
    if channels >= 3:
        np.testing.assert_array_equal(back, samples)
    else:  # gray comes back gray: the luma of equal channels is the channel itself
        np.testing.assert_array_equal(back[:, :, 0], samples[:, :, 0])
    if channels in (2, 4):
        np.testing.assert_array_equal(back[:, :, -1], samples[:, :, -1])


def test_linear_float_layers_come_back_linear_and_unclipped():
    samples = np.array([[[0.0, 0.18, 1.5]]], dtype=np.float32)
    layer = pixels.decode(samples, pixels.LINEAR)
    assert layer.rgb[1, 0, 0].item() == pytest.approx(0.4614, abs=1e-3)  # 18% grey is ~46% in sRGB
    back = pixels.encode(layer.rgb, layer)
    np.testing.assert_allclose(back, samples, atol=1e-5)


def test_16bit_precision_survives_a_float_trip():
    ramp = np.arange(0, 65536, 1, dtype=np.uint16)[None, :, None].repeat(3, axis=2)
    layer = pixels.decode(ramp)
    assert len(np.unique(pixels.encode(layer.rgb * 1.0, layer)[0, :, 0])) == 65536


def test_blend_follows_a_soft_mask_and_the_strength():
    from backend.imaging.mixing import Mix

    original, adjusted = torch.zeros(3, 1, 3), torch.ones(3, 1, 3)
    mask = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3)
    assert Mix(selection=mask).blend(original, adjusted)[2, 0].tolist() == [0.0, 0.5, 1.0]
    assert Mix(strength=0.5, selection=mask).blend(original, adjusted)[2, 0].tolist() == [0.0, 0.25, 0.5]
    assert Mix().blend(original, adjusted) is adjusted
