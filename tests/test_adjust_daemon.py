"""sa-adjust with its shipped weights, served by a real daemon over loopback gRPC."""

import numpy as np
import pytest

from backend import models
from backend.client import BackendError
from backend.styles import LOCAL as STYLES, STYLES as REGISTRY

pytestmark = pytest.mark.skipif(not models.get("sa-adjust").installed(),
                                reason="sa-adjust weights are not installed (semantic-enhance train sa-adjust)")


def textured(photo, height, width):
    """A big layer: the photo upscaled, plus a one-pixel checkerboard that no 512 px copy can carry."""
    import cv2

    big = cv2.resize(photo, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    checker = ((np.indices((height, width)).sum(0) % 2) * 2 - 1) * 12
    return np.clip(big + checker[:, :, None], 0, 255).astype(np.uint8), checker


@pytest.mark.parametrize("style", STYLES)
def test_every_style_changes_the_photo_and_returns_its_k_maps(daemon, photo, style):
    result = daemon.client().adjust(photo, style=style, model="sa-adjust", return_maps=True)
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    change = np.abs(result.image.astype(int) - photo).mean()
    assert change > 2.0, "the style did nothing"
    presets = REGISTRY[style].presets
    k = len(presets)
    assert list(result.summary.map_names) == list(presets)  # named by the registry, in channel order
    maps = np.stack([result.images["adjustment_map/%d" % i][:, :, 0] for i in range(k)]).astype(int)
    assert maps.shape == (k,) + photo.shape[:2]
    assert np.abs(maps.sum(0) - 255).max() <= k  # a soft partition of the image


def test_full_resolution_keeps_detail_the_network_never_saw(daemon, photo):
    image, checker = textured(photo, 1500, 2000)
    result = daemon.client().adjust(image, style="local-xpro", model="sa-adjust").image
    assert result.shape == image.shape
    # the checkerboard survives: the high-pass of the result correlates with the one added
    high = result.astype(np.float32).mean(2)
    high = high - (np.roll(high, 1, 0) + np.roll(high, -1, 0) + np.roll(high, 1, 1) + np.roll(high, -1, 1)) / 4
    correlation = np.corrcoef(high[8:-8, 8:-8].ravel(), checker[8:-8, 8:-8].ravel())[0, 1]
    assert correlation > 0.9


def test_16bit_stays_16bit_with_fine_gradations(daemon, photo):
    image = photo.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, photo.shape).astype(np.uint16)
    result = daemon.client().adjust(image, style="foreground-pop-out", model="sa-adjust").image
    assert result.dtype == np.uint16
    assert len(np.unique(result[:, :, 1])) > 4 * len(np.unique(photo[:, :, 1]))


def test_the_selection_limits_the_adjustment_and_strength_zero_changes_nothing(daemon, photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[100:400, 150:450] = 255
    client = daemon.client()
    result = client.adjust(photo, style="local-xpro", model="sa-adjust", mask=mask).image
    outside = mask == 0
    assert np.abs(result[outside].astype(int) - photo[outside]).max() <= 1
    assert np.abs(result[~outside].astype(int) - photo[~outside]).mean() > 2.0
    same = client.adjust(photo, style="local-xpro", model="sa-adjust", options={"strength": "0"}).image
    assert np.abs(same.astype(int) - photo).max() <= 1


def test_personalisation_replaces_the_map_with_the_users_selection(daemon, photo):
    """Selected pixels take preset 1, the rest preset 0: each half equals the whole image under that preset."""
    client = daemon.client()
    left = np.zeros(photo.shape[:2], np.uint8)
    left[:, :256] = 255
    ones = np.full(photo.shape[:2], 255, np.uint8)
    personal = dict(style="local-xpro", model="sa-adjust", mask_role="adjustment-map")
    split = client.adjust(photo, mask=left, selected_preset=1, unselected_preset=0, **personal).image
    all_1 = client.adjust(photo, mask=ones, selected_preset=1, unselected_preset=0, **personal).image
    all_0 = client.adjust(photo, mask=ones, selected_preset=0, unselected_preset=1, **personal).image
    assert np.abs(split[:, :256].astype(int) - all_1[:, :256]).max() <= 1
    assert np.abs(split[:, 256:].astype(int) - all_0[:, 256:]).max() <= 1
    assert np.abs(all_1.astype(int) - all_0).mean() > 1.0, "presets 0 and 1 look the same"
    assert result_parameters(client, photo, left)["personalised"] is True


def result_parameters(client, photo, mask):
    return client.adjust(photo, style="local-xpro", model="sa-adjust", mask=mask, mask_role="adjustment-map",
                         selected_preset=2, unselected_preset=3).parameters


def test_bad_adjust_requests_get_sentences(daemon, photo):
    client = daemon.client()
    with pytest.raises(BackendError, match="has no style 'sepia'") as caught:
        client.adjust(photo, style="sepia", model="sa-adjust")
    assert caught.value.code == "INVALID_ARGUMENT"
    mask = np.full(photo.shape[:2], 255, np.uint8)
    with pytest.raises(BackendError, match=r"has presets 0 to 1 \(subject, background\), not 7"):
        client.adjust(photo, style="watercolor", model="sa-adjust", mask=mask, mask_role="adjustment-map",
                      selected_preset=7)
    with pytest.raises(BackendError, match="has no preset 'sky'; its presets are: subject, background"):
        client.adjust(photo, style="watercolor", model="sa-adjust", mask=mask, mask_role="adjustment-map",
                      selected_preset="sky")
    for bad in ("3", "-0.5", "nan", "lots"):
        with pytest.raises(BackendError, match="strength is a number from 0 to 1") as caught:
            client.adjust(photo, style="watercolor", model="sa-adjust", options={"strength": bad})
        assert caught.value.code == "INVALID_ARGUMENT"
