"""``semantic-enhance``: the daemon, the command-line clients, and the training/data entry points.

Client commands talk to a running daemon (``--addr``/``SEMANTIC_ENHANCE_ADDR``, token from
``--token-file``/``SEMANTIC_ENHANCE_TOKEN_FILE``/the user config), or to a private in-process one with
``--embedded``. Errors print as one sentence and a non-zero exit code, never a traceback.
"""

import argparse
import json
import logging
import os
import sys

from .transport import auth


class UsageError(Exception):
    """A command that cannot go on; the message is one sentence (exit code 2)."""


def _add_client_flags(parser, writes=True):
    parser.add_argument("--addr", help="daemon address, host:port or unix:PATH (default: $SEMANTIC_ENHANCE_ADDR "
                                       "or 127.0.0.1:%d)" % auth.DEFAULT_PORT)
    parser.add_argument("--token-file", help="token file (default: $SEMANTIC_ENHANCE_TOKEN_FILE or %s)"
                        % auth.default_token_file())
    parser.add_argument("--tls-ca", help="PEM file to verify a daemon that serves TLS (its CA or self-signed "
                                         "certificate; default $SEMANTIC_ENHANCE_TLS_CA)")
    parser.add_argument("--embedded", action="store_true",
                        help="start a private daemon in this process instead of talking to a running one")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    if writes:  # only commands that write files can overwrite one
        parser.add_argument("--overwrite", action="store_true", help="allow an output to replace an input file")


def _connect(args):
    from . import client

    if args.embedded:
        daemon, connection = client.embedded()
        args._daemon = daemon
        return connection
    return client.Client(args.addr, token_file=args.token_file, tls_ca=args.tls_ca)


def _progress(args):
    if args.quiet or not sys.stderr.isatty():
        return None

    def show(fraction, stage):
        sys.stderr.write("\r%-12s %3.0f%%" % (stage, 100 * fraction))
        sys.stderr.flush()
    return show


def _read(path, args=None):
    """The image at ``path``; the first one read (the command's input) also gives the output's metadata."""
    from .imaging.files import read_image_and_metadata

    pixels, metadata = read_image_and_metadata(path)
    if args is not None and getattr(args, "_metadata", None) is None:
        args._metadata = metadata
    return pixels


def _check_outputs(args, images=(), folders=(), others=()):
    """Every output checked before any work: a known format, a writable place, never an input."""
    from .imaging.files import ImageFileError, check_output

    inputs = [getattr(args, "input", None), getattr(args, "mask", None), getattr(args, "stack", None)]
    for path in inputs[:2]:
        if path and not os.path.exists(path):
            raise ImageFileError("no such image file: %s" % path)
    overwrite = getattr(args, "overwrite", False)
    for path in images:
        if path:
            check_output(path, inputs, overwrite)
    for path in folders:
        if path and os.path.exists(path) and not os.path.isdir(path):
            raise ImageFileError("cannot write into %s: it is a file, not a folder" % path)
    for path in others:
        if path and os.path.isdir(path):
            raise ImageFileError("cannot write %s: it is a directory; give a file name" % path)
        if path and not overwrite and any(i and os.path.exists(i) and os.path.exists(path) and os.path.samefile(i, path)
                                          for i in inputs):
            raise ImageFileError("refusing to write over the input %s; give another output or pass --overwrite" % path)


def _write(path, pixels, args=None):
    from .imaging.files import write_image

    write_image(path, pixels, getattr(args, "_metadata", None))
    print("wrote %s (%dx%d, %s)" % (path, pixels.shape[1], pixels.shape[0], pixels.dtype))


def _read_mask(path, like):
    mask = _read(path)
    if mask.shape[2] in (3, 4):  # a painted RGB(A) mask: use its first channel
        mask = mask[:, :, :1]
    return mask


def _write_maps(directory, result, names=()):
    """Every returned image but the result, one PNG each, named by what it is ("adjustment-map-subject.png")."""
    os.makedirs(directory, exist_ok=True)
    roles = sorted(role for role in result.images if role != "result")
    for index, role in enumerate(roles):
        name = role.split("/", 1)[0].replace("_", "-")
        name += "-" + (names[index] if index < len(names) else role.split("/", 1)[-1])
        _write(os.path.join(directory, name.replace("/", "-").replace(" ", "_") + ".png"), result.images[role])


# -- commands -------------------------------------------------------------------------------------

def cmd_serve(args):
    from .transport.server import Daemon, pick_device

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        token = auth.ensure_token(args.token_file)
        device = pick_device(args.device)
        daemon = Daemon(host=args.host, port=args.port, unix=args.unix, token=token, device=device,
                        max_pixels=args.max_pixels, allow_remote=args.allow_remote, tls_cert=args.tls_cert,
                        tls_key=args.tls_key, stall_seconds=args.stall_seconds, sweep_seconds=args.sweep_seconds,
                        max_request_bytes=args.max_request_mib << 20).start()
    except (ValueError, OSError, RuntimeError, auth.TokenError) as error:
        raise UsageError("serve: %s" % error)
    print("semantic-enhance daemon listening on %s (device %s, %s, token in %s)"
          % (daemon.address, device, "TLS" if daemon.tls else "plain", args.token_file or auth.default_token_file()),
          flush=True)
    daemon.serve_forever()


def cmd_models(args):
    reply = _connect(args).models()
    print("daemon %s on %s (max %.0f MP per image)" % (reply.server_version, reply.device, reply.max_pixels / 1e6))
    for model in reply.models:
        state = "installed" if model.installed else "not installed"
        print("  %-12s v%-3s %-13s %s" % (model.id, model.version, state, model.summary))
        if model.styles:
            print("  %12s styles: %s" % ("", ", ".join(model.styles)))
        for style in model.style_info:
            if style.presets:
                print("  %12s %s: presets %s (personalise: --selected %s --unselected %s)"
                      % ("", style.name, ", ".join(style.presets), style.selected_preset, style.unselected_preset))
        for option in model.options:
            print("  %12s option %s (default %s): %s" % ("", option.name, option.default_value, option.description))


def cmd_adjust(args):
    _check_outputs(args, [args.output], [args.maps_out])
    image = _read(args.input, args)
    mask = _read_mask(args.mask, image) if args.mask else None
    result = _connect(args).adjust(image, style=args.style, model=args.model or "", mask=mask,
                                   mask_role=args.mask_role, return_maps=bool(args.maps_out), strength=args.strength,
                                   selected_preset=args.selected, unselected_preset=args.unselected,
                                   on_progress=_progress(args))
    _write(args.output, result.image, args)
    if args.maps_out:
        _write_maps(args.maps_out, result, list(result.summary.map_names))


def cmd_enhance(args):
    _check_outputs(args, [args.output])
    image = _read(args.input, args)
    result = _connect(args).enhance(image, method=args.method, on_progress=_progress(args))
    _write(args.output, result.image, args)


def cmd_progressive(args):
    _check_outputs(args, [args.output], [args.steps_out], [args.json])
    image = _read(args.input, args)
    result = _connect(args).progressive(image, steps=args.steps, return_step_images=bool(args.steps_out),
                                        on_progress=_progress(args))
    _write(args.output, result.image, args)
    if args.steps_out:
        _write_maps(args.steps_out, result)
    stack = result.summary_dict().get("filter_stack", {"filters": []})
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(stack, handle, indent=2)
        print("wrote %s" % args.json)
    else:
        print(json.dumps(stack, indent=2))


def _aspect(text):
    """"3:2", "1.5" or "0" (free) -> width / height; a sentence for anything else."""
    try:
        if ":" in text:
            width, height = (float(part) for part in text.split(":", 1))
            value = width / height
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError("--aspect is W:H (3:2) or a number (1.5), both positive; 0 is free; got %r" % text) from None
    if not value >= 0 or value == float("inf"):
        raise UsageError("--aspect is W:H (3:2) or a number (1.5), both positive; 0 is free; got %r" % text)
    return value


def cmd_crop(args):
    aspect = _aspect(args.aspect)
    _check_outputs(args, [args.out], others=[args.json])
    image = _read(args.input, args)
    result = _connect(args).crop(image, count=args.count, aspect_ratio=aspect, on_progress=_progress(args))
    height, width = image.shape[:2]
    boxes = [dict(x=round(c.x * width), y=round(c.y * height), width=round(c.width * width),
                  height=round(c.height * height), score=round(c.score, 4)) for c in result.summary.crops]
    text = json.dumps({"image": {"width": width, "height": height}, "crops": boxes}, indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text)
    print(text)
    if args.out and boxes:
        best = boxes[0]
        _write(args.out, image[best["y"]:best["y"] + best["height"], best["x"]:best["x"] + best["width"]], args)


def cmd_filters(args):
    from .client import stack_message

    _check_outputs(args, [args.output])
    try:
        with open(args.stack) as handle:
            stack = json.load(handle)
    except OSError as error:
        raise UsageError("cannot read the filter stack %s: %s" % (args.stack, error.strerror))
    except ValueError as error:
        raise UsageError("the filter stack %s is not JSON (%s)" % (args.stack, error))
    stack_message(stack)  # a malformed stack is refused before any image is read
    image = _read(args.input, args)
    mask = _read_mask(args.mask, image) if args.mask else None
    result = _connect(args).filters(image, stack, mask=mask, on_progress=_progress(args))
    _write(args.output, result.image, args)


def cmd_score(args):
    _check_outputs(args, others=[args.json])
    result = _connect(args).score(_read(args.input, args), on_progress=_progress(args))
    scores = [{"name": score.name, "value": round(score.value, 4),
               "distribution": [round(p, 6) for p in score.distribution]} for score in result.summary.scores]
    text = json.dumps({"scores": scores}, indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(text)


def cmd_styles(args):
    """Learnt styles in this user's styles folder (a daemon of this user serves them at once)."""
    from .models.fcn_stylize import store

    if args.action != "list" and not args.target:
        raise UsageError("styles %s: give the %s" % (args.action, "style file" if args.action == "import" else "style's name"))
    try:
        if args.action == "list":
            names = store.names()
            print("learnt styles in %s:%s" % (store.styles_dir(), "" if names else " none"))
            for name in names:
                print("  %-24s %s" % (name, store.describe(name)))
        elif args.action == "remove":
            store.remove(args.target)
            print("removed style %r" % args.target)
        elif args.action == "export":
            if not args.dest:
                raise UsageError("styles export NAME DIR: give the folder to copy the style into")
            print("wrote %s" % ", ".join(store.export(args.target, args.dest)))
        else:
            print("imported %s" % store.import_file(args.target, args.name, replace=args.replace))
    except store.StyleFileError as error:
        raise UsageError("styles %s: %s" % (args.action, error))


def cmd_install_gimp_plugin(args):
    try:
        from plugin_gimp.install import install
    except ImportError:
        raise UsageError("the GIMP plug-in files are not part of this installation")
    print("installed the GIMP plug-in into %s; restart GIMP to see Filters > Semantic Enhance" % install(args.dest))


# -- parser ---------------------------------------------------------------------------------------

def _strength(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("strength is a number from 0 to 1, got %r" % text)
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="semantic-enhance", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the daemon")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=auth.DEFAULT_PORT)
    p.add_argument("--unix", help="listen on a Unix socket (mode 0600) instead of TCP")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--token-file", help="token file (created, mode 0600, if missing; default %s)"
                   % auth.default_token_file())
    p.add_argument("--max-pixels", type=int, default=120_000_000, help="largest image accepted, in pixels")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (needs --tls-cert and --tls-key; the token still applies)")
    p.add_argument("--tls-cert", help="serve TLS with this certificate (PEM); clients verify it with --tls-ca")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.add_argument("--stall-seconds", type=float, default=60.0,
                   help="give up on an upload that sends nothing for this long (default 60)")
    p.add_argument("--sweep-seconds", type=float, default=10.0,
                   help="how often to remove shared-memory segments left by clients that died (default 10)")
    p.add_argument("--max-request-mib", type=int, default=4096,
                   help="memory one request may need for its pixels, mask and their float copies (MiB; the "
                        "daemon holds at most twice this for all requests at once)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="what the running daemon hosts")
    _add_client_flags(p, writes=False)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("adjust", help="learned semantic style (sa-adjust, fcn-stylize)")
    p.add_argument("input"); p.add_argument("output")
    p.add_argument("--style", required=True)
    p.add_argument("--model", choices=("sa-adjust", "fcn-stylize"))
    p.add_argument("--mask", help="selection image: where to apply (or, with --mask-role adjustment-map, the map)")
    p.add_argument("--mask-role", choices=("blend", "adjustment-map"), default="blend",
                   help="blend: the mask limits where the style applies; adjustment-map: it says which preset "
                        "applies where (personalise)")
    p.add_argument("--strength", type=_strength, default=1.0, help="how much of the style, 0..1 (default 1)")
    p.add_argument("--selected", help="adjustment-map: the preset for the selected pixels, by name (`models` "
                                      "lists them; default: the style's subject preset)")
    p.add_argument("--unselected", help="adjustment-map: the preset elsewhere (default: the style's background)")
    p.add_argument("--maps-out", help="also write the K semantic adjustment maps into this folder, named by preset")
    _add_client_flags(p)
    p.set_defaults(func=cmd_adjust)

    p = sub.add_parser("enhance", help="aesthetic enhancement (EnhanceGAN)")
    p.add_argument("input"); p.add_argument("output")
    p.add_argument("--method", choices=("piecewise", "deep-filter"), default="piecewise")
    _add_client_flags(p)
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("progressive", help="interpretable filter stack under an aesthetic critic (PIEA)")
    p.add_argument("input"); p.add_argument("output")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--steps-out", help="write the image after each step into this folder")
    p.add_argument("--json", help="write the filter stack here (replay it with `semantic-enhance filters`)")
    _add_client_flags(p)
    p.set_defaults(func=cmd_progressive)

    p = sub.add_parser("crop", help="aesthetic crop boxes, best first")
    p.add_argument("input")
    p.add_argument("--json"); p.add_argument("--out", help="write the best crop here")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--aspect", "--aspect-ratio", default="0", help="W:H (3:2) or width / height (1.5); 0: free")
    _add_client_flags(p)
    p.set_defaults(func=cmd_crop)

    p = sub.add_parser("filters", help="apply an explicit filter stack (JSON)")
    p.add_argument("input"); p.add_argument("output")
    p.add_argument("--stack", required=True)
    p.add_argument("--mask")
    _add_client_flags(p)
    p.set_defaults(func=cmd_filters)

    p = sub.add_parser("score", help="quality scores: {\"scores\": [{name, value, distribution}]}: critic "
                                     "(1..10, higher is better) and brisque (about 0..100, lower is better)")
    p.add_argument("input")
    p.add_argument("--json", help="also write the scores to this JSON file")
    _add_client_flags(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("styles", help="your learnt styles: list, remove NAME, export NAME DIR, import FILE")
    p.add_argument("action", choices=("list", "remove", "export", "import"))
    p.add_argument("target", nargs="?", help="remove/export: the style's name; import: a .safetensors style file")
    p.add_argument("dest", nargs="?", help="export: the folder to copy the style file and its card into")
    p.add_argument("--name", help="import: the name to give it (default: the file's)")
    p.add_argument("--replace", action="store_true", help="import: replace a style of the same name")
    p.set_defaults(func=cmd_styles)

    p = sub.add_parser("install-gimp-plugin", help="install the GIMP 3 plug-in for this user")
    p.add_argument("--dest", help="plug-ins folder (default: found from the usual GIMP 3 locations)")
    p.set_defaults(func=cmd_install_gimp_plugin)

    for module in ("training.data.cli", "training.cli"):  # data, train and eval live with the training code
        try:
            __import__(module, fromlist=["add_parser"]).add_parser(sub)
        except ModuleNotFoundError as error:  # that part is not installed yet; a broken one still fails loudly
            if not module.startswith(error.name or "?"):
                raise
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .client import BackendError
    from .imaging.files import ImageFileError

    try:
        args.func(args)
    except (BackendError, ImageFileError, UsageError) as error:
        print("semantic-enhance: %s" % error, file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a --json file that cannot be written
        print("semantic-enhance: %s: %s" % (error.filename or "error", error.strerror or error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if getattr(args, "_daemon", None) is not None:
            args._daemon.stop(grace=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
