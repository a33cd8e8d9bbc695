"""`adjust --model fcn-stylize` with a built-in style (the paper's FCN) on a 24-MP 16-bit layer, by stage.

Stages: decode, downscale to the <= 512 px view, VGG-16 context (both scales, an uncached pass), head (the
dense 3x10 maps on the view's grid), full-resolution application (exact up to 4 MP; above, the maps on a
box-averaged copy of at most 750 px carried by local affine maps), encode; then the round trip through a real daemon. Reference in
the same run: one OpenCV RGB->Lab conversion of the same image (float32).

    python -m training.bench.fcn_stylize [--style cold] [--megapixels 24] [--markdown]
"""

import argparse
import tempfile

import numpy as np
import torch

from backend.imaging import mixing, pixels, upsample
from backend.models import fcn_stylize as fcn
from backend.models.backbones.cache import FeatureCache, backbone_features
from backend.models.fcn_stylize import network
from backend.spawn import spawn_daemon
from training.bench import best_seconds, lab_seconds, photo_at, timed


def in_process(net, image):
    stages = {}
    layer = timed(stages, "decode", lambda: pixels.decode(image))
    rgb_low = timed(stages, "downscale", lambda: upsample.downscale(layer.rgb))
    cache = FeatureCache(2)  # a fresh cache: a real backbone pass a scale
    maps = timed(stages, "VGG-16 context (two scales)", lambda: network.context_maps(
        rgb_low, lambda x: backbone_features(x, network.BACKBONE, cache, levels=(network.CONTEXT_LEVEL,))))
    coefficients = timed(stages, "head (3x10 maps at the view, edge-aware)",
                         lambda: network.edge_aware(net.coefficient_maps(maps, rgb_low), rgb_low))
    from backend.imaging import transforms

    colour_maps = transforms.ColourTransformMaps(coefficients, "quadratic-lab")
    result = timed(stages, "full-res application", lambda: fcn.render(layer.rgb, colour_maps, mixing.Mix()))
    out = timed(stages, "encode", lambda: pixels.encode(result, layer))
    return stages, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default="cold", choices=("cold", "spring", "foreground-pop-out", "local-xpro"))
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    model = fcn.FCNStylize()
    model.ensure_loaded("cpu")
    net = model.nets[args.style]
    image = (photo_at(args.megapixels).astype(np.uint32) * 257).astype(np.uint16)
    height, width = image.shape[:2]
    in_process(net, image[:64, :64])  # warm-up (loads the VGG-16)
    cv_float = lab_seconds(image.astype(np.float32) / 65535, args.repeat)
    stages, local = min((in_process(net, image) for _ in range(args.repeat)), key=lambda r: sum(r[0].values()))
    with tempfile.TemporaryDirectory() as tmp:
        daemon = spawn_daemon(tmp)
        try:
            client = daemon.client()
            client.adjust(image[:64, :64], style=args.style, model="fcn-stylize")
            remote, result = best_seconds(lambda: client.adjust(image, style=args.style, model="fcn-stylize"),
                                          args.repeat)
        finally:
            daemon.stop()
    assert np.abs(result.image.astype(int) - local.astype(int)).max() <= 257  # one 8-bit code (thread order)
    application = stages["full-res application"]
    rows = list(stages.items()) + [("end to end through the daemon", remote),
                                   ("reference: OpenCV RGB->Lab, float32", cv_float)]
    print("fcn-stylize %s, %dx%d (%.1f MP) 16-bit RGB, torch %s, %d threads" % (
        args.style, width, height, width * height / 1e6, torch.__version__, torch.get_num_threads()))
    if args.markdown:
        print("| stage | seconds |\n|---|---|")
        for name, seconds in rows:
            print("| %s | %.3f |" % (name, seconds))
    else:
        for name, seconds in rows:
            print("%-40s %8.3f s" % (name, seconds))
    print("application / OpenCV Lab float32: %.2fx" % (application / cv_float))


if __name__ == "__main__":
    main()
