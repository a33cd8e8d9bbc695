"""Where a two-preset style's error comes from: the presets or the predicted adjustment map?

Runs the shipped network twice on each photo of a split: with its own predicted map, and with the style
program's own foreground cue given as the user's map (the personalisation path of the paper's §4.4,
exactly what the GIMP "Personalize" entry sends). If the second is far closer to the target, the
presets are right and the map is the weak link.

    python -m training.sa_adjust.user_map_check --style foreground-pop-out [--split test]
"""

import argparse

import torch

from backend import weights
from backend.models import sa_adjust as sa
from training.data.pairs import ensure_pairs
from training.sa_adjust.cli import net_from
from training.data.pairs import load_split, read_image
from training.data.styles import lab_distance


def check(style, split="test", log=print):
    tensors, metadata = weights.load_with_metadata(sa.SAAdjust.weights_name(style))
    net = net_from(metadata, tensors)
    if net.k != 2:
        raise SystemExit("this check is for the two-preset styles (foreground-pop-out, watercolor)")
    sums = {"input": 0.0, "predicted map": 0.0, "foreground cue as the user's map": 0.0}
    pairs = load_split(ensure_pairs(style), split)
    for pair in pairs:
        image, target = read_image(pair.input), read_image(pair.target)
        foreground = read_image(pair.cues["foreground"])[:1]
        def distance(result):
            return lab_distance(result.clamp(0, 1)[None], target[None]) / len(pairs)
        with torch.no_grad():
            sums["input"] += distance(image)
            sums["predicted map"] += distance(sa.adjust(net, image)[0])
            # which preset is the foreground one is the network's choice: take the better assignment
            sums["foreground cue as the user's map"] += min(
                distance(sa.adjust(net, image, personal_map=torch.cat(order))[0])
                for order in ((foreground, 1 - foreground), (1 - foreground, foreground)))
    for name, value in sums.items():
        log("%-34s %.2f" % (name, value))
    return sums


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default="foreground-pop-out", choices=("foreground-pop-out", "watercolor"))
    parser.add_argument("--split", default="test", choices=("train", "test"))
    args = parser.parse_args(argv)
    check(args.style, args.split)


if __name__ == "__main__":
    main()
