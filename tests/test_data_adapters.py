"""Dataset adapters on small folders made here: before/after pairs, Yan et al. 2016, MIT-Adobe FiveK."""

import cv2
import numpy as np
import pytest
import torch

from training.data import adapters, pairs


def _write(path, value, sixteen_bit=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if sixteen_bit:
        cv2.imwrite(str(path), np.full((8, 12, 3), value * 257, np.uint16))
    else:
        cv2.imwrite(str(path), np.full((8, 12, 3), value, np.uint8))


def test_before_after_matches_names_ignoring_case_and_extension(tmp_path):
    for name, value in (("beach", 10), ("City", 20), ("only_before", 30)):
        _write(tmp_path / "before" / ("%s.jpg" % name), value)
    for name, value in (("beach", 110), ("city", 120), ("only_after", 130)):
        _write(tmp_path / "after" / ("%s.png" % name), value)
    found = adapters.before_after(str(tmp_path / "before"), str(tmp_path / "after"))
    assert [p.id for p in found] == ["beach", "city"]
    item = pairs.PairDataset(found, compute_cues=False)[1]
    assert abs(float(item["input"].mean()) - 20 / 255) < 0.02 and abs(float(item["target"].mean()) - 120 / 255) < 0.01


def test_yan2016_layout_with_split_files(tmp_path):
    for i in range(6):
        _write(tmp_path / "Input" / ("img%03d.jpg" % i), 10 * i)
        _write(tmp_path / "Foreground Pop-Out" / ("img%03d.png" % i), 10 * i + 5)
        _write(tmp_path / "Local_Xpro" / ("img%03d.png" % i), 10 * i + 7)
    (tmp_path / "train.txt").write_text("img000.jpg\nimg001.jpg\nimg002.jpg\n")
    (tmp_path / "test.txt").write_text("img003\nimg004\n")
    found = adapters.yan2016(str(tmp_path), "foreground-pop-out")
    assert {p.id: p.split for p in found} == {"img000": "train", "img001": "train", "img002": "train",
                                            "img003": "test", "img004": "test"}  # img005 is in no list
    assert all("Foreground Pop-Out" in p.target for p in found)
    assert [p.id for p in adapters.yan2016(str(tmp_path), "local-xpro", split="test")] == ["img003", "img004"]
    with pytest.raises(FileNotFoundError, match="'watercolor' effect"):
        adapters.yan2016(str(tmp_path), "watercolor")


def test_yan2016_default_protocol_70_train_45_test(tmp_path):
    for i in range(115):
        _write(tmp_path / "original" / ("%03d.jpg" % i), i)
        _write(tmp_path / "watercolor" / ("%03d.jpg" % i), i)
    found = adapters.yan2016(str(tmp_path), "watercolor")
    counts = {s: sum(p.split == s for p in found) for s in ("train", "val", "test")}
    assert counts == {"train": 60, "val": 10, "test": 45}


def test_fivek_exports_match_by_image_number_and_keep_16_bit(tmp_path):
    _write(tmp_path / "raw" / "a0001-jmac_DSC1459.tif", 100, sixteen_bit=True)
    _write(tmp_path / "raw" / "a4600-kme_0204.tif", 50, sixteen_bit=True)
    _write(tmp_path / "raw" / "a4100-IMG_0001.tif", 60, sixteen_bit=True)
    for number in ("a0001", "a4600", "a4100"):
        _write(tmp_path / "expertC" / ("%s.jpg" % number), 200)
    found = adapters.fivek(str(tmp_path), expert="c")
    assert {p.id: p.split for p in found} == {"a0001": "train", "a4100": "val", "a4600": "test"}
    image = pairs.read_image(found[0].input)
    assert image.dtype == torch.float32 and abs(float(image.mean()) - 100 / 255) < 1e-4
    with pytest.raises(FileNotFoundError, match="expert A"):
        adapters.fivek(str(tmp_path), expert="A")
