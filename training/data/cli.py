"""``semantic-enhance data corpus|pairs|stats``: build the corpus, a style's training pairs, the distances.

Registered on the main CLI by ``backend/cli.py`` through ``add_parser(subparsers)``. Heavy imports (torch,
scikit-image) happen inside the commands so that the rest of the CLI starts fast.

    semantic-enhance data corpus [--out data/corpus] [--extra MY_PHOTOS] [--no-install]
    semantic-enhance data pairs --style watercolor [--photos DIR] --out data/pairs/watercolor
    semantic-enhance data stats --style watercolor [--pairs DIR | --corpus DIR] [--split test]
"""

import json
import os
import sys

from backend import styles as style_registry

STYLE_NAMES = tuple(style_registry.STYLES)


def add_parser(subparsers):
    data = subparsers.add_parser("data", help="training data: photo corpus, style pairs, statistics")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("corpus", help="collect the photographs shipped in packages (+ your own) with a manifest")
    p.add_argument("--out", default=os.path.join("data", "corpus"), help="corpus folder (default: data/corpus)")
    p.add_argument("--extra", action="append", default=[], metavar="DIR",
                   help="a folder of your own photos to add (repeatable)")
    p.add_argument("--no-install", action="store_true", help="do not install missing packages (pip/apt-get)")
    p.set_defaults(func=run)

    p = sub.add_parser("pairs", help="render a style's input/target pairs and cue masks (builds the corpus "
                                     "first when there is none)")
    p.add_argument("--style", required=True, choices=STYLE_NAMES)
    p.add_argument("--photos", help="any folder of photos (default: the corpus, with its split)")
    p.add_argument("--corpus", default=os.path.join("data", "corpus"), help="corpus folder (default: data/corpus)")
    p.add_argument("--out", required=True, help="output folder (pairs.json, input/, target/, cues/)")
    p.add_argument("--size", type=int, default=512, help="longer side of the pairs in pixels (default 512)")
    p.add_argument("--split", action="append", choices=("train", "val", "test"),
                   help="only these splits (repeatable; default all)")
    p.set_defaults(func=run)

    p = sub.add_parser("stats", help="mean per-pixel CIELab L2 distance input -> target (papers' 'Input' row)")
    p.add_argument("--style", required=True, choices=STYLE_NAMES)
    p.add_argument("--pairs", help="a pairs folder made by `data pairs` (default: data/pairs/STYLE if it "
                                   "exists, else rendered from the corpus in memory)")
    p.add_argument("--corpus", default=os.path.join("data", "corpus"), help="corpus folder (default: data/corpus)")
    p.add_argument("--photos", help="a plain photo folder instead of the corpus (split by the same rule)")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--json", action="store_true", help="print the result (with per-pair distances) as JSON")
    p.set_defaults(func=run)
    return data


def run(args):
    try:
        {"corpus": _corpus, "pairs": _pairs, "stats": _stats}[args.data_command](args)
    except (ValueError, FileNotFoundError) as error:
        print("semantic-enhance data: %s" % error, file=sys.stderr)
        sys.exit(2)


def _corpus(args):
    from . import corpus

    manifest = corpus.build_corpus(args.out, extra=args.extra, install=not args.no_install)
    print("%-18s %7s %10s %6s %4s %5s" % ("source", "photos", "MB", "train", "val", "test"))
    for source, row in sorted(corpus.summary(manifest).items()):
        print("%-18s %7d %10.1f %6d %4d %5d" % (source, row["photos"], row["bytes"] / 1e6, row["train"],
                                               row["val"], row["test"]))
    print("manifest: %s (%d photos)" % (os.path.join(args.out, corpus.MANIFEST), len(manifest["photos"])))
    if manifest["missing_packages"]:
        print("missing (not installed): %s" % ", ".join(manifest["missing_packages"]))


def _pairs(args):
    from . import corpus, pairs

    if not args.photos and not os.path.isfile(os.path.join(args.corpus, corpus.MANIFEST)):
        print("no corpus at %s yet: building it first" % args.corpus)
        corpus.build_corpus(args.corpus)
    pairs.build_pairs(args.style, args.out, photos=args.photos, corpus_root=args.corpus, size=args.size,
                      splits=args.split)


def _stats(args):
    from . import pairs

    split = None if args.split == "all" else args.split
    root = args.pairs or (os.path.join(pairs.DEFAULT_PAIRS_ROOT, args.style)
                          if os.path.isfile(os.path.join(pairs.DEFAULT_PAIRS_ROOT, args.style, pairs.PAIRS_FILE))
                          else None)
    if root:
        result = pairs.split_stats(pairs.load_split(root, split))
        where = root
    else:
        result = pairs.style_stats(args.style, args.corpus, split, photos=args.photos)
        where = args.photos or args.corpus
    if args.json:
        print(json.dumps(dict(result, style=args.style, split=args.split, source=where), indent=1))
        return
    print("style %s, split %s, %d pairs from %s" % (args.style, args.split, result["pairs"], where))
    print("mean per-pixel CIELab L2, input -> target: %.2f" % result["mean_lab_l2"])
