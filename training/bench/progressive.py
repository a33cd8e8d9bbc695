"""`progressive` (PIEA) on a 24-megapixel 16-bit layer, by stage, in process and over gRPC.

Stages: decode the layer; the <= 512 px view; the search (M gradient steps through the critic on the
view); the final stack on the full layer (band by band); encode. Reference measured in the same run:
an OpenCV sRGB -> Lab conversion of the same 24-MP image (float32), a pointwise pass every editor pays.
Target (issue 16): <= 10 s end to end for 20 steps on this CPU.

    python -m training.bench.progressive [--steps 20] [--megapixels 24]
"""

import argparse
import tempfile

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--no-daemon", action="store_true", help="only the in-process stages")
    args = parser.parse_args(argv)

    import torch

    from backend import models
    from backend.imaging import pixels
    from backend.models import View
    from backend.spawn import spawn_daemon
    from training.bench import best_seconds, lab_seconds, photo_at, timed

    photo = photo_at(args.megapixels)
    height, width = photo.shape[:2]
    deep = (photo.astype(np.uint16) * 257 // 2)   # 16-bit, one stop under
    model = models.get("progressive")
    model.ensure_loaded("cpu")
    request = models.Request(kind="progressive", image=deep, steps=args.steps)
    times = {}
    layer = timed(times, "decode", lambda: pixels.decode(deep, request.transfer))
    view = View(layer, "cpu")
    timed(times, "view (<= 512 px)", lambda: view.rgb)
    params = timed(times, "search (%d steps)" % args.steps, lambda: model.predict(view, request))
    outcome = timed(times, "apply at full resolution", lambda: model.apply(layer, params, request))
    timed(times, "encode", lambda: pixels.encode(outcome.result, layer))
    reference = lab_seconds(photo.astype(np.float32) / 255)
    total = sum(times.values())
    print("PIEA on a %d x %d 16-bit layer (%.1f MP), %d steps, %d threads" % (width, height, width * height / 1e6,
                                                                             args.steps, torch.get_num_threads()))
    print("| stage | seconds | x OpenCV Lab of the same image |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print("| %s | %.2f | %.1f |" % (name, seconds, seconds / reference))
    print("| **in process, total** | **%.2f** | %.1f |" % (total, total / reference))
    print("| OpenCV sRGB->Lab, float32 (reference) | %.2f | 1.0 |" % reference)
    if not args.no_daemon:
        daemon = spawn_daemon(tempfile.mkdtemp(), timeout=60)
        try:
            client = daemon.client()
            client.progressive(deep[:256, :256], steps=1)   # warm: the model loaded
            seconds, _ = best_seconds(lambda: client.progressive(deep, steps=args.steps))
            print("| **over gRPC, end to end (upload, all stages, download)** | **%.2f** | %.1f |"
                  % (seconds, seconds / reference))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
