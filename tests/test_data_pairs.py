"""Style pairs on disk, load_split, PairDataset, and the `semantic-enhance data` commands."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from backend import cli
from training.data import corpus, cues, pairs


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photo, coffee):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name, rgb in (("astronaut", photo), ("coffee", coffee), ("chelsea", data.chelsea()),
                      ("rocket", data.rocket())):
        Image.fromarray(np.ascontiguousarray(rgb)).save(folder / ("%s.png" % name))
    return folder


@pytest.fixture(scope="module")
def built(photo_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    listing = pairs.build_pairs("foreground-pop-out", str(out), photos=str(photo_folder), size=96,
                                cache_dir=str(out / "cue-cache"), log=lambda *_: None)
    return out, listing


def test_pairs_are_written_with_their_cues_and_splits(built):
    out, listing = built
    assert listing["style"] == "foreground-pop-out" and len(listing["pairs"]) == 4
    assert json.loads((out / pairs.PAIRS_FILE).read_text()) == listing
    record = next(p for p in listing["pairs"] if p["id"] == "photo-astronaut")
    assert record["split"] == corpus.split_of("astronaut.png")
    assert Image.open(out / record["input"]).size == (96, 96)
    assert Image.open(out / record["target"]).size == (96, 96)
    assert set(record["cues"]) == {"faces", "skin", "sky", "water", "vegetation", "foreground"}
    sky = np.asarray(Image.open(out / record["cues"]["sky"]))
    assert sky.shape == (96, 96) and sky.dtype == np.uint8
    assert 3.0 < record["lab_distance"] < 40.0


def test_load_split_and_dataset_give_aligned_tensors(built):
    out, listing = built
    everything = pairs.load_split(str(out))
    assert sorted(p.id for p in everything) == sorted(p["id"] for p in listing["pairs"])
    for split in corpus.SPLITS:
        assert all(p.split == split for p in pairs.load_split(str(out), split))
    item = pairs.PairDataset(everything)[0]
    assert item["input"].shape[0] == 3 and item["input"].shape == item["target"].shape
    assert item["cues"].shape == (len(cues.CUE_NAMES),) + tuple(item["input"].shape[1:])
    assert 0.0 <= float(item["cues"].min()) and float(item["cues"].max()) <= 1.0
    assert not torch.equal(item["input"], item["target"])


def test_stats_from_pairs_match_the_recorded_distances(built):
    out, listing = built
    stats = pairs.split_stats(pairs.load_split(str(out)))
    recorded = np.mean([p["lab_distance"] for p in listing["pairs"]])
    assert stats["pairs"] == 4 and abs(stats["mean_lab_l2"] - recorded) < 0.3  # 8-bit PNG rounding


def test_cli_pairs_and_stats(photo_folder, tmp_path, capsys):
    out = tmp_path / "cold"
    assert cli.main(["data", "pairs", "--style", "cold", "--photos", str(photo_folder), "--out", str(out),
                     "--size", "64"]) == 0
    assert len(json.loads((out / "pairs.json").read_text())["pairs"]) == 4
    capsys.readouterr()
    assert cli.main(["data", "stats", "--style", "cold", "--pairs", str(out), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 4 and 5.0 < result["mean_lab_l2"] < 30.0


def test_cli_stats_without_a_corpus_is_a_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/pairs/spring here
    with pytest.raises(SystemExit) as stop:
        cli.main(["data", "stats", "--style", "spring", "--corpus", str(tmp_path / "none")])
    assert stop.value.code == 2
    assert "no corpus at" in capsys.readouterr().err


def test_reframes_add_fresh_training_examples_and_leave_the_rest(built, tmp_path):
    import shutil

    from training.data.cues import cues_for
    from training.data.styles import apply_style, lab_distance

    out = tmp_path / "pairs"
    shutil.copytree(built[0], out)
    before = {split: [p.id for p in pairs.load_split(str(out), split)] for split in ("train", "val", "test")}
    assert before["train"], "the fixture needs a training photo"
    cache = str(tmp_path / "cue-cache")
    pairs.add_reframes(str(out), 2, cache_dir=cache, log=lambda *_: None)
    listing = json.loads((out / pairs.PAIRS_FILE).read_text())
    pairs.add_reframes(str(out), 2, cache_dir=cache, log=lambda *_: None)   # idempotent
    assert json.loads((out / pairs.PAIRS_FILE).read_text()) == listing
    for split in ("val", "test"):
        assert [p.id for p in pairs.load_split(str(out), split, reframes=2)] == before[split]
    assert [p.id for p in pairs.load_split(str(out), "train")] == before["train"]
    assert len(pairs.load_split(str(out), "train", reframes=1)) == 2 * len(before["train"])
    reframed = pairs.load_split(str(out), "train", reframes=2)
    assert len(reframed) == 3 * len(before["train"])
    for pair in reframed[len(before["train"]):]:
        image, target = pairs.read_image(pair.input)[None], pairs.read_image(pair.target)[None]
        assert max(image.shape[-2:]) == 96 and set(pair.cues) == set(listing["cue_names"])
        rgb = (image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        fresh = apply_style("foreground-pop-out", image, cues_for(rgb, cache))
        assert lab_distance(fresh, target) < 1.0   # the target is the program on the crop (8-bit rounding)
    box = pairs.reframe_box("photo-x", 3, 640, 480)
    assert box == pairs.reframe_box("photo-x", 3, 640, 480) and box != pairs.reframe_box("photo-x", 4, 640, 480)
    x, y, w, h = box
    assert 0 <= x and x + w <= 640 and 0 <= y and y + h <= 480 and 0.3 < w * h / (640 * 480) < 0.85
