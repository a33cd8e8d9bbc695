"""Semantic cues: where sky, vegetation, faces and the foreground are, and the content-hash cache."""

import numpy as np

from training.data import cues


def _landscape():
    """Synthetic: smooth blue sky above, textured green grass below, a red object in the middle."""
    rng = np.random.default_rng(0)
    image = np.zeros((120, 160, 3), np.uint8)
    image[:50] = (90, 150, 230)
    grass = np.clip(np.array([60, 150, 40]) + rng.normal(0, 12, (70, 160, 3)), 0, 255)
    image[50:] = grass.astype(np.uint8)
    image[55:95, 65:95] = (200, 30, 30)
    return image


def test_sky_at_the_top_vegetation_at_the_bottom():
    masks = cues.compute_cues(_landscape())
    assert set(masks) == set(cues.CUE_NAMES)
    for mask in masks.values():
        assert mask.shape == (120, 160) and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    assert masks["sky"][5:40].mean() > 0.7 and masks["sky"][60:].mean() < 0.05
    assert masks["vegetation"][60:110, :50].mean() > 0.6 and masks["vegetation"][:45].mean() < 0.05
    # the red object is more foreground than the grass around it
    assert masks["foreground"][60:90, 70:90].mean() > masks["foreground"][100:, :40].mean() + 0.3


def test_astronaut_face_is_found_and_is_foreground(photo):
    boxes = cues.face_boxes(photo)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 170 < x + w / 2 < 260 and 50 < y + h / 2 < 130  # Eileen Collins' face
    masks = cues.compute_cues(photo)
    cy, cx = int(y + h / 2), int(x + w / 2)
    assert masks["faces"][cy, cx] > 0.9 and masks["foreground"][cy, cx] > 0.8
    assert masks["skin"][cy, cx] > 0.5 and masks["skin"][400:, 400:].mean() < 0.2


def test_cues_are_cached_by_content(tmp_path):
    image = _landscape()
    first = cues.cues_for(image, str(tmp_path))
    stored = list(tmp_path.rglob("*.npz"))
    assert len(stored) == 1 and stored[0].stem == cues.content_key(image)
    second = cues.cues_for(image.copy(), str(tmp_path))
    assert all(np.array_equal(first[n], second[n]) for n in cues.CUE_NAMES)
    assert abs(first["sky"] - cues.compute_cues(image)["sky"]).max() <= 1 / 255 + 1e-6  # 8-bit storage
