"""Style pairs on disk, load_split, PairDataset, and the `semantic-enhance data` commands."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from backend import cli
from training.data import corpus, pairs


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
    assert set(record["cues"]) == {"faces", "skin", "sky", "vegetation", "foreground"}
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
    assert item["cues"].shape == (5,) + tuple(item["input"].shape[1:])
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
