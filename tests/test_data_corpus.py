"""The photo corpus: manifest fields, hashes, a deterministic split that keeps scenes together, extra folders."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from training.data import corpus

PIP_SOURCES = [s for s in corpus.SOURCES if s.kind == "pip"]  # what pip installs anyway (no apt here)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    extra = tmp_path_factory.mktemp("mine")
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(extra / "holiday.jpg")
    (extra / "notes.txt").write_text("not a photo")
    (extra / "broken.png").write_bytes(b"not a png")
    messages = []
    manifest = corpus.build_corpus(str(root), extra=str(extra), install=False, sources=PIP_SOURCES,
                                   log=messages.append)
    return root, manifest, messages


def test_manifest_records_source_licence_size_and_sha256(built):
    root, manifest, _ = built
    ids = {p["id"] for p in manifest["photos"]}
    assert {"skimage-coffee", "skimage-astronaut", "sklearn-china", "matplotlib-grace_hopper"} <= ids
    for record in manifest["photos"]:
        data = (root / record["file"]).read_bytes()
        assert record["bytes"] == len(data)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["licence"] and record["package"] and record["split"] in corpus.SPLITS
    coffee = next(p for p in manifest["photos"] if p["id"] == "skimage-coffee")
    assert (coffee["width"], coffee["height"], coffee["package"]) == (600, 400, "scikit-image")
    assert json.loads((root / "manifest.json").read_text()) == manifest


def test_split_is_deterministic_and_keeps_a_stereo_pair_together(built, tmp_path):
    _, manifest, _ = built
    again = corpus.build_corpus(str(tmp_path), install=False, sources=PIP_SOURCES, log=lambda *_: None)
    splits = {p["id"]: p["split"] for p in manifest["photos"]}
    assert all(splits[p["id"]] == p["split"] for p in again["photos"])
    assert splits["skimage-motorcycle_left"] == splits["skimage-motorcycle_right"]
    assert corpus.split_of("skimage/coffee") == splits["skimage-coffee"]


def test_extra_folder_takes_readable_images_only(built):
    _, manifest, messages = built
    extra = [p for p in manifest["photos"] if p["source"].startswith("extra-")]
    assert [p["file"].split("/")[-1] for p in extra] == ["holiday.jpg"]
    assert any("broken.png" in m for m in messages)


def test_missing_packages_are_reported_not_fatal(tmp_path):
    missing = corpus.Source("nowhere", "no-such-package", "apt", "none", {"x.jpg": "x"}, lambda: None)
    manifest = corpus.build_corpus(str(tmp_path), install=False, sources=[missing], log=lambda *_: None)
    assert manifest["missing_packages"] == ["no-such-package"] and manifest["photos"] == []


def test_photos_filters_by_split_with_absolute_paths(built):
    root, manifest, _ = built
    test = corpus.photos(str(root), "test")
    assert test and all(p["split"] == "test" and p["path"].startswith("/") for p in test)
    with pytest.raises(ValueError):
        corpus.photos(str(root), "holdout")
