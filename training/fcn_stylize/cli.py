"""``semantic-enhance train fcn-stylize --pairs BEFORE_DIR AFTER_DIR --name NAME``: learn a user's style.
``semantic-enhance train fcn-stylize --style cold|...|all``: train the paper's FCN on a built-in style (fcn.py).

Learns in this process (a least-squares fit, no daemon needed) and writes the style and its model card into
the user's styles folder, where a running daemon serves it at once (it reads the folder on every request).
Bad input (unmatched or unreadable pairs, fewer than 3, a built-in or taken name, a pair that differs by more
than a resize) is one sentence, exit code 2, and nothing written.

``semantic-enhance eval fcn-stylize`` learns the invented looks of ``invented.py`` from the training photos
and measures them on held-out photos against the global quadratic baseline (docs/learn-style.md).
"""

import json
import sys
import time


def register_train(models):
    from backend import styles

    p = models.add_parser("fcn-stylize", help="learn your style from before/after pairs (about ten), served at once; "
                                              "or (--style) train the paper's FCN on a built-in style")
    p.add_argument("--pairs", nargs=2, metavar=("BEFORE_DIR", "AFTER_DIR"),
                   help="two folders of photos matched by file name: as shot, and as you retouched them")
    p.add_argument("--name", help="the style's name (letters, digits, - and _)")
    p.add_argument("--style", choices=tuple(styles.STYLES) + ("all",),
                   help="instead of --pairs/--name: train the paper's FCN on this built-in style's pairs and ship it "
                        "into backend/weights (the corpus' train split; val numbers in the manifest)")
    p.add_argument("--steps", type=int, default=None, help="with --style: training steps (default 2000)")
    p.add_argument("--lr", type=float, default=None, help="with --style: Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="with --style: seed")
    p.add_argument("--region-context", action="store_true",
                   help="with --style: also the context averaged over a quarter and half of the photo and over all of "
                        "it (an option: with --colour-context it no longer helped on val, so no shipped style uses it)")
    p.add_argument("--colour-context", action="store_true",
                   help="with --style: also where each pixel is, the colours around it and in the photo, and two "
                        "classical saliency maps (chosen on val for the subject-driven styles)")
    p.add_argument("--colours-of", choices=tuple(styles.STYLES), default=None, metavar="STYLE",
                   help="with --style: learn the colour mapping from this style's pairs (watercolor: "
                        "foreground-pop-out, whose colours its brush paints over; chosen on val)")
    p.add_argument("--out", default=None, help="with --style: weights folder (default backend/weights)")
    p.add_argument("--replace", action="store_true", help="replace a learnt style of the same name")
    p.add_argument("--no-position-terms", action="store_true", help="learn a colour-only look (no vignettes, "
                   "graduated or sky tints): fewer unknowns, for pairs whose retouch did not depend on where")
    p.add_argument("--regularisation", type=float, default=1.0, metavar="X",
                   help="factor (0.1-10, default 1) on the LUTs' smoothness and ridge: higher is smoother")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--daemon", action="store_true", help="let the running daemon learn it (the LearnStyle call: it "
                   "writes the style into the daemon's user's styles folder) instead of this process")
    p.add_argument("--addr", help="with --daemon: its address (default: $SEMANTIC_ENHANCE_ADDR or 127.0.0.1:50551)")
    p.add_argument("--token-file", help="with --daemon: its token file (default: $SEMANTIC_ENHANCE_TOKEN_FILE or "
                                        "the user's)")
    p.set_defaults(func=run_train)


def register_eval(models):
    p = models.add_parser("fcn-stylize", help="learn invented looks from real photos; held-out Lab error vs the "
                                              "input and vs a global quadratic fit")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--part", choices=("tables", "looks", "both"), default="both",
                   help="tables: the paper's Tables 1-2 for the built-in styles (the FCN, sa-adjust beside it); looks: "
                        "learnt styles on invented looks")
    p.add_argument("--split", choices=("val", "test"), default="test", help="the corpus split of the tables")
    p.set_defaults(func=run_eval)


def _bar(quiet):
    if quiet or not sys.stderr.isatty():
        return lambda fraction, stage: None

    def show(fraction, stage):
        filled = int(30 * fraction)
        sys.stderr.write("\r%-15s [%s%s] %3.0f%%" % (stage, "#" * filled, "." * (30 - filled), 100 * fraction))
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


# --daemon sends every image at most this size: the daemon fits at learn.SIDE (384 px) anyway, and the command
# then holds one photo at full size at a time, not all of them
SEND_SIDE = 1024


def _sent_size(name, path):
    import cv2

    from backend.imaging.files import ImageFileError, read_image
    from training.fcn_stylize import learn

    try:
        image = read_image(path)
    except ImageFileError as error:
        raise learn.StyleError("pair %s cannot be read: %s" % (name, error)) from None
    height, width = image.shape[:2]
    scale = SEND_SIDE / max(height, width)
    if scale < 1.0:
        shrunk = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                            interpolation=cv2.INTER_AREA)
        image = shrunk.reshape(shrunk.shape[:2] + image.shape[2:])  # OpenCV drops a single channel's axis
    return image


def run_train_on_daemon(args, progress):
    """The pairs read and checked here (names, readability), learnt by the daemon: one sentence and exit code 2
    for what it refuses, as for what this command refuses."""
    from backend.client import Client
    from training.fcn_stylize import learn

    matched = learn.match_pairs(*args.pairs)
    pairs = []
    for index, (name, before, after) in enumerate(matched):
        pairs.append((name, _sent_size(name, before), _sent_size(name, after)))
        progress(0.1 * (index + 1) / len(matched), "reading pairs")
    with Client(args.addr, token_file=args.token_file) as client:
        result = client.learn_style(pairs, args.name, replace=args.replace, options=_options(args),
                                    on_progress=lambda f, stage: progress(0.1 + 0.9 * f, stage))
    report = result.parameters
    print("the daemon learnt style %r from %d pairs in %.0f s: Lab error %.2fx the input's on the pairs, %.2fx held "
          "out; it wrote %s" % (args.name, len(pairs), report["learn_seconds"], report["training_ratio"],
                                report["held_out_ratio"], report["path"]))


def _options(args):
    """The flags as LearnStyle's options (the same names and words either way)."""
    return {"position_terms": "no" if args.no_position_terms else "yes", "regularisation": "%r" % args.regularisation}


def run_train(args):
    from backend.cli import UsageError
    from backend.models.fcn_stylize import store
    from training.fcn_stylize import learn, teach

    if args.style:
        if args.pairs or args.name or args.daemon:
            raise UsageError("train fcn-stylize: --style trains a built-in style; it takes no --pairs, --name or --daemon")
        if args.colours_of and args.style == "all":
            raise UsageError("train fcn-stylize: --colours-of names the pairs of one style's colours; give one --style with it, not all")
        from training.fcn_stylize import fcn

        return fcn.run_train_builtin(args)
    if not args.pairs or not args.name:
        raise UsageError("train fcn-stylize: give --pairs BEFORE_DIR AFTER_DIR and --name NAME (or --style STYLE)")
    progress = _bar(args.quiet)
    started = time.perf_counter()
    if args.daemon:
        try:
            store.check_name(args.name)  # the daemon checks the rest against its own styles folder
            learn.parse_options(_options(args))
            return run_train_on_daemon(args, progress)
        except (learn.StyleError, store.StyleFileError) as error:
            raise UsageError("train fcn-stylize: %s" % error)
    try:
        store.check_new_name(args.name, args.replace)
        learn.parse_options(_options(args))
        pairs = learn.read_pairs(*args.pairs, on_progress=lambda f: progress(0.1 * f, "reading pairs"))
        path, report, _ = teach.teach(args.name, pairs, args.pairs, args.replace, options=_options(args),
                                      on_progress=lambda f, stage: progress(0.1 + 0.9 * f, stage))
    except (learn.StyleError, store.StyleFileError) as error:
        raise UsageError("train fcn-stylize: %s" % error)
    seconds = time.perf_counter() - started
    print("learnt style %r from %d pairs in %.0f s: Lab error %.2fx the input's on the pairs, %.2fx held out; "
          "wrote %s (and its card %s)" % (args.name, len(pairs), seconds, report["training"]["ratio"],
                                          report["held_out"]["ratio"], path, store.paths(args.name)[1]))


def run_eval(args):
    from training.fcn_stylize import evaluate, tables

    report = {}
    if args.part in ("tables", "both"):
        results = tables.evaluate(args.split)
        print(tables.format_tables(results, args.split))
        report["tables"] = {"split": args.split, "styles": results}
    if args.part in ("looks", "both"):
        rows, seconds = evaluate.invented_looks()
        print(evaluate.table(rows, seconds))
        report.update(looks=rows, learn_seconds=seconds)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
