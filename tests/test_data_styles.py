"""Style programs: deterministic, in range, and doing what each style's description says."""

import numpy as np
import pytest
import torch

from backend.imaging.color import rgb_to_lab
from training.data import cues, styles


@pytest.fixture(scope="module")
def coffee_case(coffee):
    rgb = coffee[::2, ::2].copy()  # 200x300 keeps the test fast
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0, cues.compute_cues(rgb)


def _chroma(image, mask=None):
    lab = rgb_to_lab(image)[0]
    chroma = torch.hypot(lab[1], lab[2])
    return float(chroma.mean() if mask is None else chroma[mask].mean())


@pytest.mark.parametrize("name", list(styles.STYLES))
def test_every_style_is_deterministic_in_range_and_in_the_papers_distance_range(name, coffee_case):
    image, masks = coffee_case
    out = styles.apply_style(name, image, masks)
    assert out.shape == image.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, styles.apply_style(name, image, masks))
    assert 5.0 < styles.lab_distance(image, out) < 30.0  # the papers' "Input" rows are 13.9 to 19.7


def test_pop_out_saturates_the_foreground_and_mutes_the_background():
    image = torch.full((1, 3, 40, 40), 0.5)
    image[:, 0] = 0.7  # a reddish, mid-saturated photo
    foreground = np.zeros((40, 40), np.float32)
    foreground[10:30, 10:30] = 1.0
    out = styles.apply_style("foreground-pop-out", image, {"foreground": foreground})
    inside, outside = torch.from_numpy(foreground > 0.5), torch.from_numpy(foreground < 0.5)
    assert _chroma(out, inside) > 1.3 * _chroma(image, inside)
    assert _chroma(out, outside) < 0.5 * _chroma(image, outside)


def test_local_xpro_profiles_differ_per_category_and_weights_partition():
    image = torch.full((1, 3, 8, 8), 0.45)
    zero, one = np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32)
    results = {name: styles.apply_style("local-xpro", image, dict({k: zero for k in cues.CUE_NAMES}, **{name: one}))
               for name in ("sky", "vegetation", "skin")}
    results["other"] = styles.apply_style("local-xpro", image, {})
    colours = {name: tuple(out[0, :, 4, 4].tolist()) for name, out in results.items()}
    assert len(set(colours.values())) == 4
    half = np.full((8, 8), 0.5, np.float32)
    weights = styles.xpro_weights({"sky": half, "vegetation": half, "skin": half}, image)
    assert torch.allclose(sum(weights.values()), torch.ones(8, 8))


def test_watercolor_flattens_colour_into_superpixels(coffee_case):
    image, masks = coffee_case
    out = styles.apply_style("watercolor", image, masks)
    colours_in = len(torch.unique((image[0] * 255).round().reshape(3, -1), dim=1).T)
    colours_out = len(torch.unique((out[0] * 255).round().reshape(3, -1), dim=1).T)
    assert colours_out < colours_in / 20 and 100 < colours_out < 1500


def test_cold_is_bluer_and_less_saturated_spring_brighter_and_more_saturated(coffee_case):
    image, _ = coffee_case
    cold, spring = styles.apply_style("cold", image, {}), styles.apply_style("spring", image, {})
    lab_in, lab_cold, lab_spring = (rgb_to_lab(x)[0] for x in (image, cold, spring))
    assert _chroma(cold) < 0.8 * _chroma(image) and float(lab_cold[2].mean()) < float(lab_in[2].mean()) - 5
    assert _chroma(spring) > _chroma(image) and float(lab_spring[0].mean()) > float(lab_in[0].mean()) + 3


def test_unknown_style_is_a_sentence():
    with pytest.raises(ValueError, match="unknown style 'sepia'; the styles are: foreground-pop-out"):
        styles.apply_style("sepia", torch.zeros(1, 3, 4, 4), {})


def test_cli_offers_exactly_the_styles_there_are():
    from training.data import cli

    assert tuple(cli.STYLE_NAMES) == tuple(styles.STYLES)  # the CLI lists them without importing torch


def _blend_weight(target, base, other):
    """Per pixel, how far ``target`` lies from ``base`` towards ``other`` (0: base, 1: other), least squares."""
    difference = other - base
    return ((target - base) * difference).sum(1)[0] / (difference * difference).sum(1)[0].clamp_min(1e-6)


def test_pop_out_target_has_no_half_adjusted_band_around_the_subject():
    """A sharp subject on a textured background: beyond 3 px of its edge every pixel is fully popped (inside)
    or fully muted (outside); the soft cue used to leave a ~10 px band of half-adjusted colour."""
    import cv2

    rng = np.random.default_rng(3)
    rgb = np.clip(np.array([150, 140, 120]) + rng.normal(0, 10, (200, 300, 3)), 0, 255)
    rgb[60:140, 110:190] = np.array([200, 50, 40]) + rng.normal(0, 6, (80, 80, 3))
    rgb = rgb.astype(np.uint8)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    ones, zeros = np.ones((200, 300), np.float32), np.zeros((200, 300), np.float32)
    popped = styles.apply_style("foreground-pop-out", image, {"foreground": ones})
    muted = styles.apply_style("foreground-pop-out", image, {"foreground": zeros})
    weight = _blend_weight(styles.apply_style("foreground-pop-out", image, cues.compute_cues(rgb)), muted, popped).numpy()
    inside = np.zeros((200, 300), np.uint8)
    inside[60:140, 110:190] = 1
    far_inside = cv2.distanceTransform(inside, cv2.DIST_L2, 3) > 3
    far_outside = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3) > 3
    assert weight[far_inside].min() > 0.9
    assert np.percentile(weight[far_outside], 99.5) < 0.1


def test_local_xpro_keeps_a_lake_blue():
    """Water takes the sky's profile: the lake must not turn yellow-green as vegetation or "other" would."""
    from tests.test_data_cues import _lake_scene

    rgb = _lake_scene()
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    out = styles.apply_style("local-xpro", image, cues.compute_cues(rgb))
    lab_in, lab_out = rgb_to_lab(image)[0][:, 88:152], rgb_to_lab(out)[0][:, 88:152]
    assert float(lab_out[2].mean()) < float(lab_in[2].mean()) - 3  # bluer, not yellower
    assert float(lab_out[1].mean()) < float(lab_in[1].mean()) + 3  # not greener either (a* not down by much)
