"""`adjust` (sa-adjust) on a 24-megapixel layer on this machine, split into its stages.

Stages: decode (wire bytes -> float planes), downscale, backbone, head (dense prediction at <= 512 px and
the local affine fit), full-resolution application, encode, and transfer (round trip through a real
daemon minus the in-process time). Reference measured in the same run: one OpenCV RGB->Lab conversion
of the same image (float32, the type the application works in; the uint8 LUT path is shown too).
Targets (issue 4): <= 6 s end to end; application <= 5x the OpenCV conversion.

    python -m training.bench.adjust [--style local-xpro] [--megapixels 24] [--markdown]
"""

import argparse
import tempfile

import numpy as np
import torch

from backend.imaging import mixing, pixels, upsample
from backend.spawn import spawn_daemon
from backend.models import sa_adjust as sa
from backend.models.base import View
from training.bench import best_seconds, lab_seconds, photo_at, timed


def in_process(net, image):
    stages = {}
    layer = timed(stages, "decode", lambda: pixels.decode(image))
    rgb_low = timed(stages, "downscale", lambda: upsample.downscale(layer.rgb))
    features = timed(stages, "backbone", lambda: sa.backbone_pyramid(_backbone(), rgb_low))  # uncached: a real pass
    view = View(layer, rgb=rgb_low, features=features)
    maps = timed(stages, "head", lambda: sa.predict_maps(net, view, sa.has_brush(net.config.get("style"))))
    result = timed(stages, "full-res application", lambda: sa.render(layer.rgb, maps, mixing.Mix()))
    out = timed(stages, "encode", lambda: pixels.encode(result, layer))
    return stages, out


_BACKBONE = []


def _backbone():
    if not _BACKBONE:
        from backend.models.backbones.efficientnet import load_efficientnet_lite0
        _BACKBONE.append(load_efficientnet_lite0())
    return _BACKBONE[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default="local-xpro")
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    from backend import models
    model = models.get("sa-adjust")
    model.ensure_loaded("cpu")
    net = model.nets[args.style]
    image = photo_at(args.megapixels)
    height, width = image.shape[:2]
    in_process(net, image[:64, :64])  # warm-up

    cv_float = lab_seconds(image.astype(np.float32) / 255, args.repeat)
    cv_u8 = lab_seconds(image, args.repeat)
    stages, local = min((in_process(net, image) for _ in range(args.repeat)), key=lambda r: sum(r[0].values()))
    local_total = sum(stages.values())

    with tempfile.TemporaryDirectory() as tmp:
        daemon = spawn_daemon(tmp)
        try:
            client = daemon.client()
            client.adjust(image[:64, :64], style=args.style, model="sa-adjust")
            remote_total, result = best_seconds(lambda: client.adjust(image, style=args.style, model="sa-adjust"),
                                                args.repeat)
        finally:
            daemon.stop()
    assert np.abs(result.image.astype(int) - local.astype(int)).max() <= 1
    stages["transfer (daemon - in-process)"] = max(remote_total - local_total, 0.0)
    application = stages["full-res application"]
    print("%s, %dx%d (%.1f MP) u8 RGB, torch %s, %d threads" % (args.style, width, height, width * height / 1e6,
                                                                torch.__version__, torch.get_num_threads()))
    rows = [(name, seconds) for name, seconds in stages.items()]
    rows += [("end to end through the daemon", remote_total),
             ("reference: OpenCV RGB->Lab, float32", cv_float), ("reference: OpenCV RGB->Lab, uint8", cv_u8)]
    if args.markdown:
        print("| stage | seconds |\n|---|---|")
        for name, seconds in rows:
            print("| %s | %.3f |" % (name, seconds))
        print("\napplication / OpenCV Lab float32: %.2fx; / uint8: %.2fx" % (application / cv_float, application / cv_u8))
    else:
        for name, seconds in rows:
            print("%-40s %8.3f s" % (name, seconds))
        print("application / OpenCV Lab float32: %.2fx; / uint8: %.2fx" % (application / cv_float, application / cv_u8))


if __name__ == "__main__":
    main()
