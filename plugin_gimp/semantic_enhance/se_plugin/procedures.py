"""What each Filters → Semantic Enhance entry does once GIMP has called it. Needs GIMP.

Every entry follows one path (``run_image_entry`` and ``Job``): read the active layer (and the
selection or a channel) through Gegl, stream it to the daemon with progress in GIMP's bar, add what came back
as NEW items (layers, a layer group, channels, guides, a selection, paths) inside one undo group,
each result carrying the parameters that made it as a ``semantic-enhance`` parasite. The original
layer is never written. Score adds no item: its words go into the report (and a GIMP message when
interactive), the scores into one image parasite.
"""

import json
import os
import time
from contextlib import contextmanager

import numpy as np
from gi.repository import Gimp, GObject

from . import gegl_filters
from . import pixels as px
from . import requests as rq
from .settings import resolve, save
from .transport import BackendError, Client, describe_models


class UserError(Exception):
    """Something the user can fix in GIMP (no layer chosen, empty selection...)."""


class Progress:
    def __init__(self, title):
        self.title = title
        self.stage = None
        Gimp.progress_init("%s: sending the layer to the daemon…" % title)

    def __call__(self, fraction, stage):
        if stage and stage != self.stage:
            self.stage = stage
            Gimp.progress_set_text("%s: %s…" % (self.title, stage))
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))


def runtime():
    """GIMP's Python and the protobuf/grpcio it has: what the transport had to work with."""
    import platform
    from google.protobuf import __version__ as protobuf
    try:
        import grpc
        grpcio = grpc.__version__
    except Exception:  # noqa: BLE001  (absent or unusable: the relay is used)
        grpcio = None
    return {"python": platform.python_version(), "protobuf": protobuf, "grpcio": grpcio}


def option(config, name):
    """A procedure argument; unset text arguments can come back as None, which means empty."""
    value = config.get_property(name)
    if value is None and isinstance(config.find_property(name), GObject.ParamSpecString):
        return ""
    return value


class Job:
    """One run of one entry on one layer: the settings, the client, the layer and the report."""

    def __init__(self, title, image, drawable, config):
        self.title = title
        self.image = image
        self.config = config
        self.layer = px.LayerPixels(_pixel_layer(drawable))
        self.settings = resolve(Gimp.directory())
        self.client = Client(self.settings)
        self.report = {"procedure": title, "transport": self.client.transport.name,
                       "address": self.settings.address, "layers": [], "channels": [], "guides": [],
                       "paths": [], "runtime": runtime()}
        self.started = time.time()

    def option(self, name):
        return option(self.config, name)

    def style(self):
        """The style option; empty means the model's first style, as the daemon lists it."""
        return self.model_and_style()[1]

    def model_and_style(self):
        """(model, style) as the daemon lists them: an empty style is the model's first; a style that the chosen
        model does not serve but another installed one does (a style learnt with Learn Style… is fcn-stylize's)
        goes to that model, as `semantic-enhance adjust` without --model does."""
        model, style = self.option("model"), self.option("style").strip()
        try:
            models = [m for m in self.client.list_models().models if m.installed]
        except BackendError:
            return model, style  # the real call will say what is wrong
        if not style:
            return model, next((m.styles[0] for m in models if m.id == model and m.styles), "")
        serving = [m.id for m in models if style in m.styles]
        return (model if model in serving or not serving else serving[0]), style

    def selection_mask(self, required=False):
        """The selection as a soft mask over the layer, or None when nothing is selected."""
        if Gimp.Selection.is_empty(self.image):
            if required:
                raise UserError("Select the area first (the selection says which pixels take the preset).")
            return None
        if not self.layer.selection_touches_layer():
            raise UserError("The selection does not touch the layer \"%s\"." % self.layer.drawable.get_name())
        return self.layer.read_selection()

    def call(self, rpc, setup, image_pixels, mask=None):
        progress = Progress(self.title)
        reader = self.client.run(rpc, setup, image_pixels, mask, on_progress=progress)
        Gimp.progress_set_text("%s: adding the result…" % self.title)
        self.report["model"] = reader.summary.model
        self.report["model_version"] = reader.summary.model_version
        return reader

    def parameters(self, reader, **extra):
        """What goes into the parasite: the entry, its options, and everything the daemon said."""
        values = {"procedure": self.title, "model": reader.summary.model,
                  "model_version": reader.summary.model_version, "daemon": rq.parameters(reader.summary)}
        values.update(extra)
        return values

    def add_layer(self, name, result, transfer, parameters, group=None):
        layer = px.new_layer(self.layer, name, result, transfer, group)
        px.attach_parameters(layer, parameters)
        self.report["layers"].append(layer.get_name())
        return layer

    @contextmanager
    def undo_group(self):
        self.image.undo_group_start()
        try:
            yield
        finally:
            self.image.undo_group_end()
            Gimp.progress_update(1.0)
            Gimp.displays_flush()

    def finish(self):
        self.report["seconds"] = round(time.time() - self.started, 3)
        return self.report


def _pixel_layer(drawable):
    if drawable is None:
        raise UserError("Choose one layer first.")
    if drawable.is_group_layer():
        raise UserError("\"%s\" is a layer group; choose a pixel layer." % drawable.get_name())
    if drawable.is_layer_mask() or drawable.is_channel():
        raise UserError("\"%s\" is a mask or channel; choose a pixel layer." % drawable.get_name())
    return drawable


def _transfer(reader, role, job):
    return reader.transfers.get(role, job.layer.transfer)


def _result(reader):
    if "result" not in reader.images:
        raise BackendError("DATA_LOSS", "The daemon's reply has no result image.")
    return reader.images["result"]


# ---- the entries -----------------------------------------------------------------------------

def adjust(job):
    model, style = job.model_and_style()
    source = job.layer.read()
    mask = job.selection_mask() if job.option("use-selection") else None
    reader = job.call(*rq.adjust_setup(source, job.layer.transfer, model, style, mask,
                                       strength=job.option("strength")), source, mask)
    style = style or rq.parameters(reader.summary).get("style", "") or "default style"  # a daemon without styles
    with job.undo_group():
        job.add_layer("Auto Adjust: %s (%s)" % (style, model), _result(reader), _transfer(reader, "result", job),
                      job.parameters(reader, style=style, selection=mask is not None))
    return job.finish()


def maps(job):
    model, style = job.option("model"), job.style()
    source = job.layer.read()
    reader = job.call(*rq.adjust_setup(source, job.layer.transfer, model, style, None, return_maps=True), source)
    names = rq.map_names(reader.images, reader.summary)
    if not names:
        raise BackendError("DATA_LOSS", "The daemon returned no adjustment maps for model %s." % model)
    with job.undo_group():
        for role, name in names:
            values = reader.images[role]
            channel = px.new_channel_from(job.layer, name, values[..., 0] if values.ndim == 3 else values)
            px.attach_parameters(channel, job.parameters(reader, style=style, map=role))
            job.report["channels"].append(channel.get_name())
    return job.finish()


def personalize(job):
    model, style, source_kind = job.option("model"), job.style(), job.option("source")
    source = job.layer.read()
    if source_kind == "channel":
        channel = job.option("channel")
        if channel is None:
            raise UserError("Choose the channel that marks where the selected preset applies.")
        adjustment_map = px.read_channel(channel, job.layer)
    elif source_kind == "maps":
        channels = sorted(((rq.map_index(c.get_name()), c) for c in job.image.get_channels()
                           if rq.map_index(c.get_name()) is not None), key=lambda pair: pair[0])
        if not channels:
            raise UserError("No \"Adjustment map k\" channels: run Show Adjustment Maps first, paint on them, "
                            "then personalize with them.")
        adjustment_map = np.stack([px.read_channel(c, job.layer) for _, c in channels], axis=2)
    else:
        adjustment_map = job.selection_mask(required=True)
    selected, unselected = job.option("selected-preset"), job.option("unselected-preset")
    reader = job.call(*rq.personalize_setup(source, job.layer.transfer, model, style, adjustment_map,
                                            selected, unselected, job.option("strength")), source, adjustment_map)
    with job.undo_group():
        job.add_layer("Personalized: %s (%s)" % (style or "default style", model), _result(reader),
                      _transfer(reader, "result", job),
                      job.parameters(reader, style=style, map_source=source_kind, selected_preset=selected,
                                     unselected_preset=unselected, strength=job.option("strength")))
    return job.finish()


def aesthetic(job):
    method = job.option("method")
    source = job.layer.read()
    mask = job.selection_mask() if job.option("use-selection") else None
    reader = job.call(*rq.enhance_setup(source, job.layer.transfer, method, mask), source, mask)
    title = {"piecewise": "piecewise colour", "deep-filter": "deep filtering"}.get(method, method)
    with job.undo_group():
        job.add_layer("Aesthetic Enhance: %s" % title, _result(reader), _transfer(reader, "result", job),
                      job.parameters(reader, method=method, selection=mask is not None))
    return job.finish()


def crop(job):
    count, aspect, apply_crop = job.option("count"), job.option("aspect-ratio"), job.option("apply-crop")
    source = job.layer.read()
    reader = job.call(*rq.crop_setup(source, job.layer.transfer, count, aspect), source)
    boxes = rq.crop_boxes_in_image(reader.summary.crops, job.layer.offset_x, job.layer.offset_y,
                                   job.layer.width, job.layer.height)
    if not boxes:
        raise BackendError("DATA_LOSS", "The daemon proposed no crop.")
    image = job.image
    width, height = image.get_width(), image.get_height()
    # Boxes live in the layer; the canvas may be smaller: clip to it.
    clipped = []
    for x, y, w, h, score in boxes:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            clipped.append((x0, y0, x1 - x0, y1 - y0, score))
    if not clipped:
        raise UserError("The proposed crops lie outside the canvas (the layer is off-canvas).")
    job.report["crops"] = [list(box) for box in clipped]
    x, y, w, h, score = clipped[0]
    with job.undo_group():
        for position in (x, x + w):
            if 0 < position < width:
                image.add_vguide(position)
                job.report["guides"].append(["vertical", position])
        for position in (y, y + h):
            if 0 < position < height:
                image.add_hguide(position)
                job.report["guides"].append(["horizontal", position])
        for rank, (ax, ay, aw, ah, ascore) in enumerate(clipped[1:], start=2):
            path = Gimp.Path.new(image, "Crop alternative %d (score %.2f)" % (rank, ascore))
            corners = [(ax, ay), (ax + aw, ay), (ax + aw, ay + ah), (ax, ay + ah)]
            points = [coordinate for corner in corners for _ in range(3) for coordinate in corner]
            path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, points, True)
            image.insert_path(path, None, len(image.get_paths()))  # in rank order, best first
            px.attach_parameters(path, job.parameters(reader, rank=rank, box=[ax, ay, aw, ah], score=ascore))
            job.report["paths"].append(path.get_name())
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
        parameters = job.parameters(reader, count=count, aspect_ratio=aspect, crops=job.report["crops"])
        image.attach_parasite(Gimp.Parasite.new("semantic-enhance-crop",
                                                Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE,
                                                list(json.dumps(parameters, sort_keys=True).encode("utf-8"))))
        if apply_crop:
            image.crop(w, h, x, y)
            job.report["cropped_to"] = [x, y, w, h]
    return job.finish()


def progressive(job):
    steps = job.option("steps")
    source = job.layer.read()
    mask = job.selection_mask() if job.option("use-selection") else None
    reader = job.call(*rq.progressive_setup(source, job.layer.transfer, steps, mask), source, mask)
    result = _result(reader)
    daemon = rq.parameters(reader.summary)
    stack = daemon.get("filter_stack") or {"filters": [{"name": f.name, "values": list(f.values)}
                                                       for f in reader.summary.filter_stack.filters]}
    for item in stack.get("filters", []):  # each filter's label, as its step layer is named
        item.setdefault("label", rq.filter_label(item.get("name", "?"), item.get("values", [])))
    parameters = job.parameters(reader, steps=steps, selection=mask is not None, filter_stack=stack)
    with job.undo_group():
        group = Gimp.GroupLayer.new(job.image, "Progressive Enhance")
        job.image.insert_layer(group, job.layer.drawable.get_parent(),
                               job.image.get_item_position(job.layer.drawable))
        px.attach_parameters(group, parameters)
        for index, (role, label) in enumerate(rq.step_names(reader.images, reader.summary)):
            step = job.add_layer(label, reader.images[role], _transfer(reader, role, job),
                                 dict(parameters, step=index + 1, role=role), group=group)
            step.set_visible(False)  # the result above shows; a step shows when the user turns it on
        if job.option("editable-filters"):
            add_editable_filters(job, source, stack, parameters, mask is not None, group=group)
        job.add_layer("Progressive result", result, _transfer(reader, "result", job), parameters, group=group)
        job.report["group"] = group.get_name()
    return job.finish()


def filters(job):
    stack_text = job.option("stack-json").strip()
    stack_file = job.option("stack-file")
    if not stack_text:
        if stack_file is None or not stack_file.get_path():
            raise UserError("Choose a filter stack file (JSON, as written by `semantic-enhance progressive "
                            "--json`), or give the stack as text.")
        try:
            with open(stack_file.get_path(), encoding="utf-8") as handle:
                stack_text = handle.read()
        except OSError as error:
            raise UserError("Cannot read the filter stack %s: %s" % (stack_file.get_path(), error.strerror))
    try:
        stack = rq.parse_stack_json(stack_text)
    except ValueError as error:
        raise UserError(str(error))
    source = job.layer.read()
    mask = job.selection_mask() if job.option("use-selection") else None
    reader = job.call(*rq.filters_setup(source, job.layer.transfer, stack, mask), source, mask)
    daemon = rq.parameters(reader.summary)
    labels = rq.stack_labels(daemon.get("filter_stack"), reader.summary.filter_stack)
    parameters = job.parameters(reader, selection=mask is not None,
                                filter_stack=daemon.get("filter_stack") or json.loads(stack_text))
    with job.undo_group():
        job.add_layer("Filter stack: %s" % ", ".join(labels), _result(reader), _transfer(reader, "result", job),
                      parameters)
        if job.option("editable-filters"):  # inserted just above the source: below the result
            add_editable_filters(job, source, parameters["filter_stack"], parameters, mask is not None)
    job.report["labels"] = labels
    return job.finish()


SCORE_PARASITE = "semantic-enhance-score"


def score(job):
    """The layer's scores in words; nothing in the image changes but one parasite on the image
    ("semantic-enhance-score", undoable) that keeps the last scores and which layer they are of."""
    source = job.layer.read()
    reader = job.call(*rq.score_setup(source, job.layer.transfer), source)
    scores = rq.scores_of(reader.summary)
    if not scores:
        raise BackendError("DATA_LOSS", "The daemon's reply has no score.")
    name = job.layer.drawable.get_name()
    text = rq.scores_text(scores, name)
    parameters = job.parameters(reader, layer=name, scores=scores, text=text)
    data = list(json.dumps(parameters, sort_keys=True).encode("utf-8"))
    with job.undo_group():
        job.image.attach_parasite(Gimp.Parasite.new(SCORE_PARASITE, Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE,
                                                    data))
    job.report.update(scores=scores, text=text, parasite=SCORE_PARASITE)
    return job.finish()


def add_editable_filters(job, source, stack_json, parameters, masked, group=None):
    """A hidden copy of the source carrying the stack as GIMP 3 non-destructive GEGL filters (approximate;
    see gegl_filters), with the selection as a layer mask when the run was limited to it."""
    steps, skipped = gegl_filters.plan(stack_json)
    layer = job.add_layer("Editable filters (approximate)", source, job.layer.transfer,
                          dict(parameters, approximate=True, left_out=skipped), group=group)
    added = []
    for label, operation, properties in steps:
        drawable_filter = Gimp.DrawableFilter.new(layer, operation, label)
        config = drawable_filter.get_config()
        for name, value in properties.items():
            config.set_property(name, value)
        drawable_filter.update()
        count = len(layer.get_filters() or [])
        layer.append_filter(drawable_filter)
        if len(layer.get_filters() or []) > count:
            added.append(label)
        else:  # GIMP refused it as a non-destructive filter
            skipped.append(label)
            drawable_filter.delete()
    if masked:
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    layer.set_visible(False)
    px.attach_parameters(layer, dict(parameters, approximate=True, left_out=skipped))
    job.report["editable_filters"] = added
    job.report["left_out"] = skipped
    return layer


IMAGE_ENTRIES = {"adjust": adjust, "maps": maps, "personalize": personalize, "aesthetic": aesthetic,
                 "crop": crop, "progressive": progressive, "filters": filters, "score": score}


def run_image_entry(entry, title, image, drawables, config):
    """Run one entry; returns the report dict. Raises UserError / BackendError with a sentence."""
    if len(drawables) != 1:
        raise UserError("Choose exactly one layer (%d are selected)." % len(drawables))
    job = Job(title, image, drawables[0], config)
    try:
        return IMAGE_ENTRIES[entry](job)
    finally:
        Gimp.progress_end()


def backend(config, interactive):
    """Save the address/token if given, then test the connection and list the hosted models."""
    address, token_file, token = (option(config, name).strip() for name in ("address", "token-file", "token"))
    if config.get_property("save") and (address or token_file or token):
        save(Gimp.directory(), address, token_file, token)
    settings = resolve(Gimp.directory())
    if address:
        settings.address, settings.source = address, "this dialog"
    if token_file:
        settings.token_file = token_file
    if token:
        settings.token = token
    client = Client(settings)
    reply = client.list_models()
    text = "Connected to %s through %s.\n%s" % (settings.address, client.transport.name, describe_models(reply))
    if settings.source.startswith("environment") and not address:
        text += "\nThe address comes from SEMANTIC_ENHANCE_ADDR, which overrides saved settings."
    report = {"procedure": "Backend", "transport": client.transport.name, "settings": settings.describe(),
              "models": [{"id": m.id, "installed": m.installed, "styles": list(m.styles)} for m in reply.models],
              "text": text}
    if interactive:
        Gimp.message(text)
    return report


def _read_perceptual(image, long_side):
    """The visible pixels of ``image`` as sRGB-encoded (H, W, 3 or 4) at most ``long_side`` px on the long side,
    read from a scaled, merged duplicate (the user's image is not touched)."""
    copy = image.duplicate()
    try:
        width, height = copy.get_width(), copy.get_height()
        if max(width, height) > long_side:
            scale = long_side / float(max(width, height))
            copy.scale(max(1, round(width * scale)), max(1, round(height * scale)))
        layer = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        pixels = px.LayerPixels(layer)
        pixels.linear = False  # learnt on sRGB-encoded values, as the daemon and `train fcn-stylize` learn
        return pixels.read()
    finally:
        copy.delete()


def _load(path):
    from gi.repository import Gio
    try:
        return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    except Exception as error:  # noqa: BLE001  (GIMP says why in its own words)
        raise UserError("GIMP cannot open %s: %s" % (path, getattr(error, "message", error)))


def _folder(config, name, label):
    folder = config.get_property(name)
    path = folder.get_path() if folder is not None else None
    if not path or not os.path.isdir(path):
        raise UserError("Choose the %s folder (the photos %s)." % (label, "as shot" if label == "before"
                                                                    else "as you retouched them"))
    return path


# every image reaches the daemon at most this size: it fits at 384 px anyway, and ten 24-MP pairs held at
# once would take gigabytes in GIMP's process
LEARN_SIDE = 1024


def learn_style(config, interactive):
    """Learn Style…: pairs from two folders or from the open images, streamed to the daemon's LearnStyle call;
    progress in GIMP's bar; the style is then the daemon's (Auto Adjust lists it). Nothing in GIMP changes."""
    name = option(config, "name").strip()
    if not name:
        raise UserError("Give the new style a name (letters, digits, - and _).")
    started = time.time()
    Gimp.progress_init("Learn Style: reading the pairs…")
    try:
        pairs = []
        if option(config, "source") == "open-images":
            images = {index: image for index, image in enumerate(Gimp.get_images())}
            names = {index: (image.get_file().get_basename() if image.get_file() else image.get_name())
                     for index, image in images.items()}
            try:
                matched = rq.open_image_pairs(names)
            except ValueError as error:
                raise UserError(str(error))
            for count, (pair, before, after) in enumerate(matched):
                pairs.append((pair, _read_perceptual(images[before], LEARN_SIDE),
                              _read_perceptual(images[after], LEARN_SIDE)))
                Gimp.progress_update(0.5 * (count + 1) / len(matched))
        else:
            before_dir, after_dir = _folder(config, "before-folder", "before"), _folder(config, "after-folder", "after")
            try:
                matched = rq.folder_pairs(os.listdir(before_dir), os.listdir(after_dir))
            except ValueError as error:
                raise UserError(str(error))
            for count, (pair, before, after) in enumerate(matched):
                loaded = []
                for path in (os.path.join(before_dir, before), os.path.join(after_dir, after)):
                    image = _load(path)
                    try:
                        loaded.append(_read_perceptual(image, LEARN_SIDE))
                    finally:
                        image.delete()
                pairs.append((pair,) + tuple(loaded))
                Gimp.progress_update(0.5 * (count + 1) / len(matched))
        settings = resolve(Gimp.directory())
        client = Client(settings)
        setup = rq.learn_style_setup(name, len(pairs), bool(config.get_property("replace")),
                                     bool(config.get_property("position-terms")), config.get_property("regularisation"))
        reader = client.learn_style(setup, pairs, on_progress=Progress("Learn Style"))
    finally:
        Gimp.progress_end()
    text = rq.learnt_style_text(reader.summary)
    report = {"procedure": "Learn Style", "transport": client.transport.name, "style": reader.summary.learnt_style.name,
              "pairs": [pair for pair, _, _ in pairs], "daemon": rq.parameters(reader.summary), "text": text,
              "seconds": round(time.time() - started, 3)}
    if interactive:
        Gimp.message(text)
    return report


def style_choices():
    """The styles the daemon serves, for Auto Adjust's style list; [] when it does not answer (the dialog then
    keeps its plain text field, and the run says what is wrong)."""
    try:
        return rq.style_choices(Client(resolve(Gimp.directory())).list_models())
    except Exception:  # noqa: BLE001
        return []


def prefill_style(config):
    """Interactive runs: an empty style becomes the chosen model's first style, when the daemon answers."""
    if option(config, "style"):
        return
    try:
        reply = Client(resolve(Gimp.directory())).list_models()
    except Exception:  # noqa: BLE001  (the dialog still opens; the run will say what is wrong)
        return
    for model in reply.models:
        if model.id == option(config, "model") and model.styles:
            config.set_property("style", model.styles[0])


def prefill_backend_dialog(config):
    """Show the settings in use (GIMP would show the last values typed, which may no longer apply)."""
    settings = resolve(Gimp.directory())
    config.set_property("address", settings.address)
    config.set_property("token-file", settings.token_file)
