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


def _tower_scene():
    """A white tower with a red band, sharp-edged, rising from textured grass into a smooth blue sky (a
    lighthouse against the sky), 200x300."""
    rng = np.random.default_rng(1)
    image = np.zeros((200, 300, 3), np.float32)
    rows = np.linspace(0.0, 1.0, 120)[:, None, None]
    image[:120] = (70, 130, 225) + rows * (40, 40, 20)  # a sky that brightens towards the horizon
    image[120:] = np.array([70, 140, 45]) + rng.normal(0, 14, (80, 300, 3))
    image[30:185, 130:170] = (235, 232, 225) + rng.normal(0, 3, (155, 40, 3))
    image[70:95, 130:170] = (200, 40, 35)
    return np.clip(image, 0, 255).astype(np.uint8)


def _distance_to_tower_edge():
    inside = np.zeros((200, 300), bool)
    inside[30:185, 130:170] = True
    import cv2
    outside_distance = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    inside_distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    return inside, inside_distance, outside_distance


def test_sky_stops_at_the_subjects_edge_without_a_rim():
    """The sky cue was dilated and blurred: it reached ~10 px onto a tower (a blue rim in the targets)."""
    masks = cues.compute_cues(_tower_scene())
    inside, inside_distance, outside_distance = _distance_to_tower_edge()
    sky = masks["sky"]
    assert sky[inside & (inside_distance > 3)].max() < 0.05  # no sky on the tower beyond 3 px of its edge
    open_sky = (outside_distance > 3) & (np.arange(200)[:, None] < 110)
    assert sky[open_sky].mean() > 0.9 and np.percentile(sky[open_sky], 5) > 0.7


def _lake_scene():
    """Sky at the top, a treeline, a calm blue-teal lake with faint ripples, a textured grass bank below."""
    rng = np.random.default_rng(2)
    image = np.zeros((200, 300, 3), np.float32)
    image[:60] = (120, 170, 230)
    image[60:80] = np.array([40, 90, 35]) + rng.normal(0, 18, (20, 300, 3))   # trees
    ripples = 3 * np.sin(np.arange(80)[:, None] * 0.9)[..., None]
    image[80:160] = np.array([70, 150, 160]) + ripples + rng.normal(0, 1.5, (80, 300, 3))  # the lake
    image[160:] = np.array([80, 150, 50]) + rng.normal(0, 16, (40, 300, 3))  # grass
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_lake_is_water_not_vegetation():
    masks = cues.compute_cues(_lake_scene())
    lake, grass = (slice(88, 152), slice(None)), (slice(168, 196), slice(None))
    assert masks["water"][lake].mean() > 0.9 and masks["vegetation"][lake].max() < 0.05
    assert masks["vegetation"][grass].mean() > 0.8 and masks["water"][grass].max() < 0.1
    assert masks["sky"][lake].max() < 0.05 and masks["water"][:55].max() < 0.05


def test_region_cues_are_decided_up_to_the_edges():
    """What a retoucher's mask looks like: the colour-defined regions are in or out but for a few percent of
    the frame, and no cue is left half-on in a ring 3-12 px around a sharp subject (the halo's place)."""
    for scene in (_tower_scene(), _lake_scene()):
        masks = cues.compute_cues(scene)
        for name in ("sky", "water", "vegetation"):
            undecided = float(((masks[name] > 0.1) & (masks[name] < 0.9)).mean())
            assert undecided < 0.05, (name, undecided)
    masks = cues.compute_cues(_tower_scene())
    _, inside_distance, outside_distance = _distance_to_tower_edge()
    ring = ((outside_distance > 3) & (outside_distance < 12)) | ((inside_distance > 3) & (inside_distance < 12))
    for name in ("sky", "vegetation"):  # the foreground's band: test_data_styles' pop-out halo test
        undecided = float(((masks[name][ring] > 0.1) & (masks[name][ring] < 0.9)).mean())
        assert undecided < 0.05, (name, undecided)
