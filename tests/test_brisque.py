"""BRISQUE, the score task's independent scorer: our features and regression against OpenCV's, its
direction on damaged copies, and its shipped LIVE model files (the daemon's reply: tests/test_critic.py)."""

import shutil

import cv2
import numpy as np
import pytest

from backend import weights
from backend.models.critic import brisque

# OpenCV 5.0.0 (opencv-contrib-python-headless) cv2.quality.QualityBRISQUE with the same two YAML files,
# on the 8-bit grey of each picture (brisque.grey's levels); blur: cv2.GaussianBlur(grey, (0, 0), 2)
OPENCV_SCORES = {"astronaut": 0.4986, "coffee": 3.6216, "chelsea": 2.0648, "immunohistochemistry": 26.7917,
                 "astronaut-blur2": 57.9451}


@pytest.fixture(scope="module")
def model():
    return brisque.load()


def planar(rgb_u8):
    return np.ascontiguousarray(rgb_u8[..., :3].transpose(2, 0, 1)).astype(np.float32) / 255


def test_scores_match_opencv_quality_brisque(model):
    from skimage import data

    for name, expected in OPENCV_SCORES.items():
        image = brisque.grey(planar(getattr(data, name.split("-")[0])()))
        if name.endswith("blur2"):
            image = brisque.unit(cv2.GaussianBlur(np.round(image * 255).astype(np.uint8), (0, 0), 2))
        assert model.predict(brisque.features(image)) == pytest.approx(expected, abs=0.01), name


def test_regression_matches_opencvs_own_svm(model, photo):
    """The RBF epsilon-SVR evaluated here against cv2.ml's predict on the same scaled features."""
    svm = cv2.ml.SVM_load(weights.verified_path(brisque.MODEL_FILE))
    rng = np.random.default_rng(0)
    vectors = [brisque.features(brisque.grey(planar(photo)))]
    vectors += [model.low + (model.high - model.low) * rng.uniform(0.2, 0.8, 36) for _ in range(5)]
    for vector in vectors:
        scaled = (-1 + 2 * (vector - model.low) / (model.high - model.low)).astype(np.float32)[None]
        expected = float(np.clip(svm.predict(scaled)[1][0, 0], 0, 100))
        assert model.predict(vector) == pytest.approx(expected, abs=1e-3)


def test_features_have_the_papers_shape(photo):
    vector = brisque.features(brisque.grey(planar(photo)))
    assert vector.shape == (36,) and np.isfinite(vector).all()
    # per scale: MSCN shape and variance, then 4 neighbour products x (shape, mean, left var, right var)
    shapes = vector[[0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    assert ((shapes >= 0.2) & (shapes < 10)).all()
    assert (vector[[4, 5, 8, 9, 12, 13, 16, 17]] > 0).all()


def test_noise_blur_and_jpeg_raise_brisque(model, photo):
    rng = np.random.default_rng(0)
    clean = model.score(planar(photo))
    noisy = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(photo, (0, 0), 2)
    _, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 10])
    for spoiled in (noisy, blurred, cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)):
        assert model.score(planar(spoiled)) > clean + 10, clean
    assert 0 <= clean < 20


def test_a_flat_layer_has_no_brisque(model):
    assert model.score(np.full((3, 64, 64), 0.5, np.float32)) is None


def test_model_files_are_listed_and_hash_checked(tmp_path):
    for name in (brisque.MODEL_FILE, brisque.RANGE_FILE):
        assert weights.entry(name)["training"]["license"] == "Apache-2.0"
        shutil.copy(weights.verified_path(name), tmp_path / name)
    shutil.copy(weights.WEIGHTS_DIR + "/manifest.json", tmp_path / "manifest.json")
    assert brisque.load(str(tmp_path)).support_vectors.shape == (774, 36)
    with open(tmp_path / brisque.RANGE_FILE, "a") as handle:
        handle.write("\n")
    with pytest.raises(weights.WeightsError, match="does not match its manifest"):
        brisque.load(str(tmp_path))
