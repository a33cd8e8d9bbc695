"""`enhancegan` (enhance by both methods, and crop) on a 24-megapixel 16-bit layer, by stage, in process and
over gRPC.

Stages: decode the layer; the <= 512 px view; the backbone pass; the heads (and, for crops, scoring the
candidates); the application at full resolution; encode. Reference measured in the same run: an OpenCV
sRGB -> Lab conversion of the same 24-MP image (float32). Target (issue 18): each at most 2 s end to end.

    python -m training.bench.enhancegan [--megapixels 24] [--no-daemon]
"""

import argparse
import tempfile

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--no-daemon", action="store_true", help="only the in-process stages")
    args = parser.parse_args(argv)

    import torch

    from backend import models
    from backend.imaging import pixels
    from backend.models import View
    from backend.models.backbones.cache import DEFAULT_CACHE
    from backend.spawn import spawn_daemon
    from training.bench import best_seconds, lab_seconds, photo_at, timed

    photo = photo_at(args.megapixels)
    height, width = photo.shape[:2]
    deep = (photo.astype(np.uint16) * 257 // 2)
    model = models.get("enhancegan")
    model.ensure_loaded("cpu")
    reference = lab_seconds(photo.astype(np.float32) / 255)
    print("enhancegan on a %d x %d 16-bit layer (%.1f MP), %d threads" % (width, height, width * height / 1e6,
                                                                          torch.get_num_threads()))
    print("| task | stage | seconds | x OpenCV Lab of the same image |")
    print("|---|---|---|---|")
    for task, method in (("enhance", "piecewise"), ("enhance", "deep-filter"), ("crop", "")):
        request = models.Request(kind=task, style=method, image=deep)
        DEFAULT_CACHE.clear()
        times = {}
        layer = timed(times, "decode", lambda: pixels.decode(deep, request.transfer))
        view = View(layer, "cpu")
        timed(times, "view (<= 512 px)", lambda: view.rgb)
        timed(times, "backbone", lambda: view.features)
        params = timed(times, "heads" if task == "enhance" else "heads + candidate scoring",
                       lambda: model.predict(view, request))
        outcome = timed(times, "apply at full resolution", lambda: model.apply(layer, params, request))
        if outcome.result is not None:
            timed(times, "encode", lambda: pixels.encode(outcome.result, layer))
        name = method or task
        for stage, seconds in times.items():
            print("| %s | %s | %.2f | %.1f |" % (name, stage, seconds, seconds / reference))
        total = sum(times.values())
        print("| %s | **in process, total** | **%.2f** | %.1f |" % (name, total, total / reference))
    print("| | OpenCV sRGB->Lab, float32 (reference) | %.2f | 1.0 |" % reference)
    if not args.no_daemon:
        daemon = spawn_daemon(tempfile.mkdtemp(), timeout=60)
        try:
            client = daemon.client()
            client.crop(deep[:256, :256], count=1)   # warm: the model loaded
            for name, call in (("piecewise", lambda: client.enhance(deep, method="piecewise")),
                               ("deep-filter", lambda: client.enhance(deep, method="deep-filter")),
                               ("crop", lambda: client.crop(deep, count=5))):
                seconds, _ = best_seconds(call)
                print("| %s | **over gRPC, end to end (upload, all stages, download)** | **%.2f** | %.1f |"
                      % (name, seconds, seconds / reference))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
