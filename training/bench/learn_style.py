"""Learn my style: the learning time for ten pairs, and the 24-megapixel application vs OpenCV's Lab conversion.

Learning: ten before/after pairs written as files (the eight training photos of invented.py and two more,
each with the split-toning look), then ``semantic-enhance train fcn-stylize`` end to end in this process
(reading, fitting, 5-fold held-out check, writing). Application: ``looks.render`` (what the daemon runs) of that style on a
24-MP copy of a photo (float32 planes, as the daemon holds a layer), against one OpenCV RGB->Lab conversion
of the same image (float32), measured in the same run, and the render's stages. Another process may share
the CPU: timings are the best of ``--repeat``, and ``--threads 1`` (torch and OpenCV on one thread each) gives
numbers that oversubscribed cores disturb least (OpenMP threads that wait for a busy core spin).

    python -m training.bench.learn_style [--megapixels 24] [--repeat 2] [--pairs 10] [--threads N]
"""

import argparse
import os
import tempfile
import time

import cv2
import numpy as np
import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=10, help="how many pairs to learn from (at most 10)")
    parser.add_argument("--threads", type=int, default=0, help="torch and OpenCV threads (0: their defaults)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)

    from backend.cli import main as cli
    from backend.imaging import looks, transforms, upsample
    from backend.models.fcn_stylize import store
    from training.bench.adjust import photo_at
    from training.fcn_stylize import invented

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_DATA_HOME"] = os.path.join(tmp, "data")
        names = (invented.TRAIN + invented.HELD_OUT[:2])[:args.pairs]
        for name, rgb in invented.photos(names).items():
            for folder, image in (("before", rgb), ("after", invented.split_toning(rgb))):
                os.makedirs(os.path.join(tmp, folder), exist_ok=True)
                cv2.imwrite(os.path.join(tmp, folder, name + ".png"), (image[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
        started = time.perf_counter()
        assert cli(["train", "fcn-stylize", "--pairs", os.path.join(tmp, "before"), os.path.join(tmp, "after"),
                    "--name", "bench", "--quiet"]) == 0
        learning = time.perf_counter() - started
        look, _ = store.load("bench")

    image = photo_at(args.megapixels)
    height, width = image.shape[:2]
    planes = torch.from_numpy(image).permute(2, 0, 1).float().div_(255).contiguous()
    floats = image.astype(np.float32) / 255
    low = transforms.fit_copy(planes)
    styled = looks.apply_look(low[0], look).unsqueeze(0)
    maps = transforms.ColourTransformMaps(upsample.fit_local_affine(low, styled, looks.FIT_RADIUS, looks.FIT_EPS))
    stages = (("opencv", lambda: cv2.cvtColor(floats, cv2.COLOR_RGB2Lab)),
              ("render", lambda: looks.render(planes, look)),
              ("downscale", lambda: transforms.fit_copy(planes)),
              ("exact-low", lambda: looks.apply_look(low[0], look)),
              ("fit", lambda: upsample.fit_local_affine(low, styled, looks.FIT_RADIUS, looks.FIT_EPS)),
              ("maps", lambda: transforms.apply_colour_transforms(planes, maps, share_rows=2)))  # as carry_pointwise at 24 MP
    best = {}
    for _ in range(args.repeat):
        for name, work in stages:
            start = time.perf_counter()
            work()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    start = time.perf_counter()
    looks.apply_look(planes, look)
    best["exact"] = time.perf_counter() - start
    print("learning, %d pairs (read, fit, k-fold held-out check, write): %.1f s" % (len(names), learning))
    print("%dx%d (%.1f MP), torch %d threads" % (width, height, width * height / 1e6, torch.get_num_threads()))
    print("| stage | seconds | x OpenCV Lab |\n|---|---|---|")
    side = "%d x %d" % tuple(low.shape[-1:-3:-1])
    rows = (("the daemon's application (looks.render: exact at %s, local affine maps to full size)" % side, "render"),
            ("  of which: box-averaged copy at %s" % side, "downscale"),
            ("  of which: exact look on that copy", "exact-low"),
            ("  of which: local affine fit (radius %d) on it" % looks.FIT_RADIUS, "fit"),
            ("  of which: the affine maps applied at full size", "maps"),
            ("exact evaluation of every pixel (looks.apply_look), once", "exact"))
    for label, key in rows:
        print("| %s | %.3f | %.2f |" % (label, best[key], best[key] / best["opencv"]))
    print("| OpenCV RGB->Lab, float32 (reference) | %.3f | 1.0 |" % best["opencv"])


if __name__ == "__main__":
    main()
