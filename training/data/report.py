"""Pictures and numbers of the training data: one grid per style and the corpus/distance tables.

    python -m training.data.report [--corpus data/corpus] [--out training/reports]

Writes ``<out>/pairs_<style>.png`` (rows: photos; columns: input, target, and for local styles the
foreground mask and the category map local-xpro uses: sky blue, vegetation green, people orange,
other grey), each cell about 256 px wide, and ``<out>/data_stats.md`` (corpus per source, mean
input->target CIELab L2 per style and split, timings). The photos are rendered at the pairs' 512 px.
"""

import argparse
import os
import time

import cv2
import numpy as np
import torch

from . import corpus as corpus_module
from .cues import compute_cues, cues_for, load_rgb
from .pairs import DEFAULT_SIZE, _to_tensor, _to_uint8_image
from .styles import STYLES, apply_style, lab_distance, xpro_weights

GRID_PHOTOS = ("skimage-astronaut", "sklearn-china", "opencv-doc-leuvenA")
CELL_WIDTH = 240
CATEGORY_COLOURS = {"sky": (70, 130, 255), "vegetation": (60, 200, 60), "people": (255, 150, 40),
                    "other": (110, 110, 110)}


def category_map(cues, shape):
    weights = xpro_weights(cues, torch.zeros(1, 3, *shape))
    picture = sum(w.numpy()[..., None] * np.array(CATEGORY_COLOURS[name], np.float32) for name, w in weights.items())
    return np.clip(picture, 0, 255).astype(np.uint8)


def _cell(rgb, label=None):
    height = round(rgb.shape[0] * CELL_WIDTH / rgb.shape[1])
    cell = cv2.resize(rgb, (CELL_WIDTH, height), interpolation=cv2.INTER_AREA)
    if label:
        cv2.rectangle(cell, (0, 0), (CELL_WIDTH, 16), (0, 0, 0), -1)
        cv2.putText(cell, label, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def style_grid(style, records):
    rows = []
    for record in records:
        rgb = load_rgb(record["path"], DEFAULT_SIZE)
        cues = cues_for(rgb)
        target = _to_uint8_image(apply_style(style, _to_tensor(rgb), cues))
        cells = [_cell(rgb, "input: %s (%s)" % (record["id"][len(record["source"]) + 1:][:16], record["split"])),
                 _cell(target, "target: %s" % style)]
        if STYLES[style].local:
            foreground = (np.repeat(cues["foreground"][..., None], 3, axis=2) * 255).astype(np.uint8)
            cells += [_cell(foreground, "foreground mask"),
                      _cell(category_map(cues, rgb.shape[:2]), "sky/vegetation/people/other")]
        height = max(c.shape[0] for c in cells)
        rows.append(np.hstack([np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0))) for c in cells]))
    return np.vstack(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=corpus_module.DEFAULT_ROOT)
    parser.add_argument("--out", default=os.path.join("training", "reports"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    manifest = corpus_module.load_manifest(args.corpus)
    records = corpus_module.photos(args.corpus)
    by_id = {r["id"]: r for r in records}
    grid_records = [by_id[i] for i in GRID_PHOTOS if i in by_id] or records[:3]

    lines = ["# Training data: measured", "", "Corpus (`semantic-enhance data corpus`):", "",
             "| source | photos | MB | train | val | test |", "|---|---|---|---|---|---|"]
    for source, row in sorted(corpus_module.summary(manifest).items()):
        lines.append("| %s | %d | %.1f | %d | %d | %d |" % (source, row["photos"], row["bytes"] / 1e6, row["train"],
                                                          row["val"], row["test"]))
    rendered = {}
    for record in records:
        rgb = load_rgb(record["path"], DEFAULT_SIZE)
        rendered[record["id"]] = (record["split"], rgb, cues_for(rgb))
    started = time.time()  # cues without the cache, on a few photos
    for _, rgb, _ in list(rendered.values())[:8]:
        compute_cues(rgb)
    cue_seconds = (time.time() - started) / min(8, max(1, len(rendered)))
    lines += ["", "Mean per-pixel CIELab L2 distance input -> target at %d px (papers' \"Input\" row: pop-out "
              "13.86, local-xpro 19.71, watercolor 15.30, cold 16.95, spring 18.56):" % DEFAULT_SIZE, "",
              "| style | train | val | test | all | s/photo |", "|---|---|---|---|---|---|"]
    for style in STYLES:
        distances = {"train": [], "val": [], "test": []}
        started = time.time()
        for split, rgb, cues in rendered.values():
            image = _to_tensor(rgb)
            distances[split].append(lab_distance(image, apply_style(style, image, cues)))
        seconds = (time.time() - started) / max(1, len(rendered))
        every = sum(distances.values(), [])
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            style, *(np.mean(distances[s]) if distances[s] else float("nan") for s in ("train", "val", "test")),
            np.mean(every), seconds))
        grid = style_grid(style, grid_records)
        path = os.path.join(args.out, "pairs_%s.png" % style)
        cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print("wrote %s" % path)
    lines += ["", "Computing the cues (cached after the first time): %.2f s per photo at %d px; style programs "
              "single-threaded. Machine: 2-core CPU shared with other jobs." % (cue_seconds, DEFAULT_SIZE)]
    with open(os.path.join(args.out, "data_stats.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
