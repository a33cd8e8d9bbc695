"""`score` (the aesthetic critic) of one photo: in process and over gRPC through a real daemon.

Each repeat changes a corner of the photo, so the feature cache never hits and every score pays its
backbone pass. Reference measured in the same run: one area downscale of the same photo to 512 px (the
step every model pays). Target (issue 16): <= 0.3 s for one photo.

    python -m training.bench.score [PHOTO ...] [--repeats 5]
"""

import argparse
import tempfile
import time

import numpy as np


def _median_seconds(call, image, repeats):
    call(image)   # warm: model loaded, threads started
    times = []
    for i in range(repeats):
        image[:8, :8] = (37 * i + 1) % 255
        started = time.perf_counter()
        call(image)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="*", help="default: scikit-image's astronaut and the first corpus test photo")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import torch

    from backend import models
    from backend.imaging import upsample
    from backend.spawn import spawn_daemon
    from training.data.cues import load_rgb

    if args.photos:
        photos = [(path, np.array(load_rgb(path))) for path in args.photos]
    else:
        from skimage import data

        from training.critic.data import corpus_photos
        photos = [("astronaut", np.array(data.astronaut()))]
        photos += [(photo_id, np.array(load_rgb(path))) for photo_id, path in corpus_photos("test")[:1]]
    critic = models.get("critic")
    critic.ensure_loaded("cpu")
    daemon = spawn_daemon(tempfile.mkdtemp(), timeout=60)
    try:
        client = daemon.client()
        print("| photo | size | in process (s) | over gRPC (s) | downscale to 512 px (s, reference) |")
        print("|---|---|---|---|---|")
        for name, image in photos:
            planes = torch.from_numpy(image).permute(2, 0, 1).float() / 255
            reference = _median_seconds(lambda _: upsample.downscale(planes), image, args.repeats)
            local = _median_seconds(lambda im: critic.run(models.Request(kind="score", image=im)), image, args.repeats)
            remote = _median_seconds(client.score, image, args.repeats)
            print("| %s | %d x %d | %.3f | %.3f | %.3f |" % (name, image.shape[1], image.shape[0], local, remote,
                                                          reference))
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
