"""What each menu entry asks the daemon, and how the answer is named. No GIMP here (tested on the host).

Each ``*_setup`` returns (rpc name, setup message) for a layer's pixels and options; the naming
helpers turn a reply's summary into layer, channel and path names in the user's words.
"""

import json

from . import schema, wire


def _image_header(pixels, transfer):
    return wire.header_for(pixels, transfer)


def _mask_header(mask):
    return wire.mask_header_for(mask) if mask is not None else None


def _strength_options(strength):
    return {} if strength is None or float(strength) == 1.0 else {"strength": repr(float(strength))}


def adjust_setup(pixels, transfer, model, style, mask=None, return_maps=False, strength=None):
    setup = schema.AdjustSetup(image=_image_header(pixels, transfer), model=model, style=style,
                               return_maps=return_maps, mask_role=schema.BLEND, options=_strength_options(strength))
    if mask is not None:
        setup.mask.CopyFrom(_mask_header(mask))
    return "Adjust", setup


def personalize_setup(pixels, transfer, model, style, adjustment_map, selected_preset="", unselected_preset="",
                      strength=None):
    """``adjustment_map`` (H, W) replaces the predicted map: selected pixels take preset ``selected_preset``,
    the rest ``unselected_preset`` (names as the daemon lists them, or numbers; empty: the style's
    defaults, its subject and its background); or (H, W, K): K painted maps, one per preset."""
    setup = schema.AdjustSetup(image=_image_header(pixels, transfer), model=model, style=style,
                               mask_role=schema.ADJUSTMENT_MAP, options=_strength_options(strength))
    for field, preset in (("selected_preset", selected_preset), ("unselected_preset", unselected_preset)):
        preset = str(preset).strip()
        if preset.isdigit():
            setattr(setup, field, int(preset))
        elif preset:
            setattr(setup, field + "_name", preset)
    setup.mask.CopyFrom(_mask_header(adjustment_map))
    return "Adjust", setup


def enhance_setup(pixels, transfer, method, mask=None):
    setup = schema.EnhanceSetup(image=_image_header(pixels, transfer), method=method)
    if mask is not None:
        setup.mask.CopyFrom(_mask_header(mask))
    return "Enhance", setup


def crop_setup(pixels, transfer, count=5, aspect_ratio=0.0):
    return "Crop", schema.CropSetup(image=_image_header(pixels, transfer), count=count, aspect_ratio=aspect_ratio)


def progressive_setup(pixels, transfer, steps=0, mask=None):
    setup = schema.ProgressiveSetup(image=_image_header(pixels, transfer), steps=steps, return_step_images=True)
    if mask is not None:
        setup.mask.CopyFrom(_mask_header(mask))
    return "Progressive", setup


def score_setup(pixels, transfer):
    return "Score", schema.ScoreSetup(image=_image_header(pixels, transfer))


def parse_stack_json(text):
    """A FilterStack message from the stack JSON format {"filters": [{"name": ..., "values": [...]}]}."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError("the filter stack is not valid JSON: %s" % error)
    items = value.get("filters") if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise ValueError('a filter stack looks like {"filters": [{"name": "exposure", "values": [0.4]}, ...]}')
    stack = schema.FilterStack()
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise ValueError("each filter of the stack needs a name, e.g. {\"name\": \"exposure\", \"values\": [0.4]}")
        stack.filters.add(name=str(item["name"]), values=[float(v) for v in item.get("values", [])])
    return stack


def filters_setup(pixels, transfer, stack, mask=None):
    setup = schema.FiltersSetup(image=_image_header(pixels, transfer), stack=stack)
    if mask is not None:
        setup.mask.CopyFrom(_mask_header(mask))
    return "ApplyFilters", setup


# ---- Learn Style: which images make the pairs ------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".xcf")
AFTER_SUFFIXES = ("-after", "_after", " after", "-edited", "_edited", " edited")
MIN_PAIRS = 3  # the daemon's rule too (training/fcn_stylize/learn.py); said here before anything is read


def _stem(name):
    base = name.rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return (stem, "." + ext.lower()) if dot and stem else (base, "")


def folder_pairs(before_names, after_names):
    """[(pair name, before file name, after file name)] of two folders' listings, matched by file name
    without extension (a raw editor's .jpg export of a .tif matches), as `train fcn-stylize` matches them.
    Raises ValueError with a sentence when an image has no partner or there are fewer than MIN_PAIRS."""
    found = []
    for names in (before_names, after_names):
        images = {}
        for name in sorted(names):
            stem, ext = _stem(name)
            if ext in IMAGE_EXTENSIONS and not name.startswith("."):
                if stem in images:
                    raise ValueError("Two images are named %s (%s and %s): keep one." % (stem, images[stem], name))
                images[stem] = name
        found.append(images)
    before, after = found
    lonely = sorted(set(before) ^ set(after))
    if lonely:
        raise ValueError("Every photo needs its retouched partner of the same name in the other folder; "
                         "unmatched: %s." % ", ".join(lonely[:5] + (["…"] if len(lonely) > 5 else [])))
    if len(before) < MIN_PAIRS:
        raise ValueError("A style needs at least %d before/after pairs; the folders hold %d." % (MIN_PAIRS, len(before)))
    return [(stem, before[stem], after[stem]) for stem in sorted(before)]


def open_image_pairs(names):
    """Pairs among open images by name: "X-after" (or "X-edited", "_after", " after"...) is the retouch of
    "X", extensions ignored. ``names``: {key: image name}; returns [(pair name, before key, after key)].
    Raises ValueError with a sentence when there are fewer than MIN_PAIRS."""
    by_stem = {}
    for key, name in names.items():
        by_stem.setdefault(_stem(name)[0], key)
    pairs = []
    for stem, key in sorted(by_stem.items()):
        for suffix in AFTER_SUFFIXES:
            if stem.lower().endswith(suffix) and stem[:-len(suffix)] in by_stem:
                pairs.append((stem[:-len(suffix)], by_stem[stem[:-len(suffix)]], key))
                break
    if len(pairs) < MIN_PAIRS:
        raise ValueError("A style needs at least %d before/after pairs; among the open images (%s) %d pair(s) were "
                         "found (an image \"X\" and its retouch \"X-after\" or \"X-edited\")."
                         % (MIN_PAIRS, ", ".join(sorted(names.values())) or "none", len(pairs)))
    return pairs


def style_choices(reply):
    """[(style name, label)] of every installed model's styles as the daemon lists them (ListModels), for the
    style list of Auto Adjust's dialog: the built-in styles and the ones learnt with Learn Style…; a style two
    models serve (the local styles: sa-adjust and the paper's FCN) is listed once, under the first, which is
    also the model Auto Adjust picks for it (the Model field chooses the other)."""
    choices, listed = [], set()
    for model in reply.models:
        if not model.installed:
            continue
        titles = {style.name: style.title for style in model.style_info}
        for name in model.styles:
            if name in listed:
                continue
            listed.add(name)
            title = titles.get(name) or name
            choices.append((name, "%s (%s)" % (title if title == name else "%s: %s" % (title, name), model.id)))
    return choices


def learn_style_setup(name, pair_count, replace=False, position_terms=True, regularisation=1.0):
    """LearnStyle's setup; the dialog's options as the daemon reads them (training/fcn_stylize/learn.py)."""
    return schema.LearnStyleSetup(name=name, pair_count=pair_count, replace=replace, options={
        "position_terms": "yes" if position_terms else "no", "regularisation": repr(float(regularisation))})


def learnt_style_text(summary):
    """The Learn Style report in words: which style, from how many pairs, how close it came."""
    report = parameters(summary)
    rows = report.get("pairs") or []
    return ("Learnt the style \"%s\" from %d pairs in %.0f s. Its colour error is %.2fx the untouched photos' on "
            "the pairs and %.2fx on pairs it did not see. It is now in Auto Adjust's styles (model fcn-stylize)."
            % (summary.learnt_style.name, len(rows), report.get("learn_seconds", 0),
               report.get("training_ratio", 0), report.get("held_out_ratio", 0)))


# ---- naming what comes back ------------------------------------------------------------------

def parameters(summary):
    try:
        value = json.loads(summary.parameters_json or "{}")
        return value if isinstance(value, dict) else {"parameters": value}
    except ValueError:
        return {"parameters_json": summary.parameters_json}


def filter_label(name, values):
    """The daemon labels its filters ("Exposure +0.42 EV"); this is only the fallback for a bare stack."""
    return "%s %s" % (name.replace("_", " ").capitalize(), " ".join("%.2f" % v for v in values)) if values else name


def stack_labels(stack_json, stack_message=None):
    """Labels of a stack: from the daemon's JSON ({"filters": [{"label": ...}]}) when it has them."""
    items = (stack_json or {}).get("filters") if isinstance(stack_json, dict) else None
    if items:
        return [item.get("label") or filter_label(item.get("name", "?"), item.get("values", [])) for item in items]
    if stack_message is not None:
        return [filter_label(f.name, list(f.values)) for f in stack_message.filters]
    return []


def _stack_items(summary):
    """[(filter name, label)] of the final stack: the daemon's parameters (which carry labels) when they
    have the stack, else ``summary.filter_stack`` with fallback labels."""
    items = (parameters(summary).get("filter_stack") or {}).get("filters")
    if isinstance(items, list) and items:
        return [(str(item.get("name", "")),
                 item.get("label") or filter_label(item.get("name", "?"), item.get("values", [])))
                for item in items]
    return [(f.name, filter_label(f.name, list(f.values))) for f in summary.filter_stack.filters]


def step_names(images, summary):
    """Name each returned step image ("step/1", "step/2 exposure" ...) by the filter it added, in step order.

    Step k is the image after the first k filters of the final stack, so its name is the k-th filter's
    label ("Exposure +0.42 EV"). The text after the role's number, when there is one, is used as it is
    unless it is only a filter name ("exposure"): then that filter's label (the k-th filter's when the
    names agree, else the only filter of that name). Without a stack: the last filter of
    ``summary.steps[k-1]``; at last the role itself.
    """
    roles = sorted((role for role in images if role.startswith("step/")),
                   key=lambda role: int(role.split("/", 1)[1].split()[0]))
    items = _stack_items(summary)
    names = []
    for role in roles:
        number, _, text = role.split("/", 1)[1].partition(" ")
        k, text = int(number), text.strip()
        kth = items[k - 1] if 0 < k <= len(items) else None
        label = ""
        if text:
            same_name = [item_label for name, item_label in items if name == text]
            if kth is not None and kth[0] == text:
                label = kth[1]
            elif len(same_name) == 1:
                label = same_name[0]
            else:
                label = text
        elif kth is not None:
            label = kth[1]
        elif 0 < k <= len(summary.steps) and summary.steps[k - 1].filters:
            last = summary.steps[k - 1].filters[-1]
            label = filter_label(last.name, list(last.values))
        names.append((role, label or role))
    return names


def map_names(images, summary):
    """(role, channel name) for each returned adjustment map, in map order."""
    roles = sorted((role for role in images if role.startswith("adjustment_map/")),
                   key=lambda role: int(role.split("/", 1)[1].split()[0]))
    names = []
    for index, role in enumerate(roles):
        title = summary.map_names[index] if index < len(summary.map_names) else ""
        if title.startswith("adjustment_map/"):  # a bare role says nothing more than the number
            title = ""
        names.append((role, "Adjustment map %d%s" % (index, (": " + title) if title else "")))
    return names


def map_index(channel_name):
    """The k of a channel named "Adjustment map k: ...", or None."""
    prefix = "Adjustment map "
    if not channel_name.startswith(prefix):
        return None
    number = channel_name[len(prefix):].split(":", 1)[0].strip()
    return int(number) if number.isdigit() else None


def crop_boxes_in_image(crops, offset_x, offset_y, width, height):
    """Crop boxes (normalised to the layer) as integer (x, y, w, h, score) in image coordinates."""
    boxes = []
    for crop in crops:
        x0 = offset_x + int(round(crop.x * width))
        y0 = offset_y + int(round(crop.y * height))
        w = max(1, int(round(crop.width * width)))
        h = max(1, int(round(crop.height * height)))
        boxes.append((x0, y0, w, h, float(crop.score)))
    return boxes


# ---- scores in words -------------------------------------------------------------------------

def _number(value):
    return "%.1f" % float(value)


def _critic(value, distribution):
    text = "Aesthetic score %s of 10 (critic: higher is better" % _number(value)
    if len(distribution) == 10 and max(distribution) > 0:  # bins are the scores 1..10
        text += "; most likely %d" % (1 + max(range(10), key=lambda i: distribution[i]))
    return text + ")"


def _brisque(value, distribution):
    return "BRISQUE %s (naturalness: lower is better, 0–100)" % _number(value)


# known score names -> words; any other name is shown by name with its value
SCORE_WORDS = {"critic": _critic, "aesthetic": _critic, "brisque": _brisque}


def score_words(name, value, distribution=()):
    """One score as a sentence: "Aesthetic score 6.8 of 10 (critic: higher is better; most likely 7)"."""
    words = SCORE_WORDS.get(str(name).strip().lower())
    distribution = [float(p) for p in distribution or ()]
    if words is not None:
        return words(value, distribution)
    return "%s %.3g" % (str(name).strip() or "Score", float(value))  # a name this plug-in does not know yet


def scores_of(summary):
    """The reply's scores as plain values: [{"name", "value", "distribution", "text"}], in the daemon's order."""
    scores = []
    for score in summary.scores:
        value = round(float(score.value), 4)
        distribution = [round(float(p), 6) for p in score.distribution]
        scores.append({"name": score.name, "value": value, "distribution": distribution,
                       "text": score_words(score.name, value, distribution)})
    return scores


def scores_text(scores, layer_name=None):
    """All scores, one sentence a line, after a line naming the layer when given."""
    lines = ["Scores of the layer \"%s\":" % layer_name] if layer_name else []
    return "\n".join(lines + [score["text"] for score in scores])
