"""Runs inside a real GIMP 3 (python-fu-eval batch): executes the cases of $SE_SCENARIO_DIR/cases.json.

For each case: open the photo, shape the layer (offset, canvas bigger or smaller than the layer,
alpha, precision), set a selection, call the procedure non-interactively, save the image as XCF, and
record everything the host test asserts on: status and message, the report, every layer (name,
size, offsets, parasite, pixels as .npy), channels, guides, paths, the selection. Written to
$SE_SCENARIO_DIR/<case id>/ and results.json. Deliberately independent of the plug-in's own modules.
"""

import json
import os
import traceback

import numpy as np
from gi.repository import Gegl, Gimp, Gio

Gegl.init(None)
OUT = os.environ["SE_SCENARIO_DIR"]  # a folder of its own inside the root, made by tests/gimp/harness.py
CASES = json.load(open(os.path.join(OUT, "cases.json")))


def sample(image):
    nick = image.get_precision().value_nick
    linear = nick.endswith("-linear") and "non-linear" not in nick
    if nick.startswith("u8"):
        return "u8", np.uint8, linear
    if nick.startswith("u16"):
        return "u16", np.uint16, linear
    return "float", np.float32, linear


def read_drawable(drawable, channels):
    image = drawable.get_image()
    type_name, dtype, linear = sample(image)
    model = {4: "RGBA", 1: "Y"}[channels]
    if not linear and channels == 4:
        model = "R'G'B'A"
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "%s %s" % (model, type_name),
                                     Gegl.AbyssPolicy.NONE)
    return np.frombuffer(bytes(data), dtype).reshape(h, w, channels)


def parasite(item, name="semantic-enhance"):
    found = item.get_parasite(name)
    return json.loads(bytes(found.get_data()).decode("utf-8")) if found else None


def describe_layers(image, folder, prefix="", light=False):
    layers = []
    for index, layer in enumerate(image.get_layers() if not prefix else prefix.get_children()):
        _, ox, oy = layer.get_offsets()
        entry = {"name": layer.get_name(), "width": layer.get_width(), "height": layer.get_height(),
                 "offset": [ox, oy], "visible": layer.get_visible(), "group": layer.is_group_layer(),
                 "parasite": parasite(layer), "has_alpha": layer.has_alpha(), "has_mask": bool(layer.get_mask()),
                 "filters": [[f.get_name(), f.get_operation_name(),
                              {p.name: f.get_config().get_property(p.name) for p in f.get_config().list_properties()
                               if isinstance(f.get_config().get_property(p.name), (int, float, bool))}]
                             for f in reversed(layer.get_filters() or [])]}  # GIMP lists the last applied first
        if layer.is_group_layer():
            entry["children"] = describe_layers(image, folder, layer, light)
        elif not light:
            key = "%s%d" % ((layer.get_parent().get_name() + "-") if layer.get_parent() else "", index)
            entry["npy"] = key.replace(" ", "_") + ".npy"
            np.save(os.path.join(folder, entry["npy"]), read_drawable(layer, 4))
            if entry["filters"]:  # what its non-destructive filters render, from a merged copy
                copy = layer.copy()
                image.insert_layer(copy, None, 0)
                copy.merge_filters()
                entry["rendered_npy"] = "rendered-" + entry["npy"]
                np.save(os.path.join(folder, entry["rendered_npy"]), read_drawable(copy, 4))
                image.remove_layer(copy)
        layers.append(entry)
    return layers


def shape_layer(image, layer, case):
    if case.get("mode") == "gray":
        image.convert_grayscale()
    if case.get("scale"):  # [width, height]: a big layer for the cancel test, a tiny one for Score
        image.scale(*case["scale"])
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    if case.get("alpha"):
        layer.add_alpha()
    if case.get("erase"):  # [x, y, w, h] in layer coordinates: made transparent
        x, y, w, h = case["erase"]
        _, ox, oy = layer.get_offsets()
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x + ox, y + oy, w, h)
        layer.edit_clear()
        Gimp.Selection.none(image)
    if case.get("canvas"):  # [width, height, offx, offy]: the canvas grows or shrinks, the layer stays
        w, h, ox, oy = case["canvas"]
        image.resize(w, h, ox, oy)
    if case.get("layer_offset"):
        layer.set_offsets(*case["layer_offset"])
    if case.get("extra_channel"):  # a channel with its left half white, for personalize-from-channel
        channel = Gimp.Channel.new(image, case["extra_channel"], image.get_width(), image.get_height(), 50.0,
                                   Gegl.Color.new("black"))
        image.insert_channel(channel, None, 0)
        sel = Gegl.Rectangle.new(0, 0, image.get_width() // 2, image.get_height())
        ones = np.full((image.get_height(), image.get_width() // 2), 255, np.uint8)
        buffer = channel.get_buffer()
        buffer.set(sel, "Y u8", ones.tobytes())
        buffer.flush()
    select = case.get("select")
    if select:
        kind, (x, y, w, h) = select["kind"], select["box"]
        if kind == "ellipse":
            image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
        else:
            image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
        if select.get("feather"):
            Gimp.Selection.feather(image, float(select["feather"]))


def run_procedure(image, layer, name, args):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if not name.endswith(("-backend", "-learn-style")):  # those two take no image
        config.set_property("image", image)
        config.set_core_object_array("drawables", [layer])
    for key, value in args.items():
        if key == "stack-file" or key.endswith("-folder"):
            value = Gio.File.new_for_path(value)
        if key == "channel":
            value = next(c for c in image.get_channels() if c.get_name() == value)
        config.set_property(key, value)
    return procedure.run(config)


def run_case(case):
    folder = os.path.join(OUT, case["id"])
    os.makedirs(folder, exist_ok=True)
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["file"]))
    layer = image.get_layers()[0]
    also_open = []  # more open images (Learn Style from the open images)
    for path in case.get("open", []):
        also_open.append(Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path)))
        # a PDB load leaves the image unnamed ("[Untitled]"), where File → Open names it after its file; GIMP
        # only lets a plug-in name an image after an XCF file: X.png becomes "X.xcf" (the stem is what counts)
        also_open[-1].set_file(Gio.File.new_for_path(os.path.splitext(path)[0] + ".xcf"))
    shape_layer(image, layer, case)
    light = case.get("light")  # a huge layer: record no pixels
    if not light:
        np.save(os.path.join(folder, "before.npy"), read_drawable(layer, 4))
    selection = image.get_selection()
    if not Gimp.Selection.is_empty(image):
        _, ox, oy = layer.get_offsets()
        mask = selection.get_buffer().get(Gegl.Rectangle.new(ox, oy, layer.get_width(), layer.get_height()), 1.0,
                                          "Y float", Gegl.AbyssPolicy.NONE)
        np.save(os.path.join(folder, "selection.npy"),
                np.frombuffer(bytes(mask), np.float32).reshape(layer.get_height(), layer.get_width()))
    for earlier in case.get("before", []):  # e.g. Show Adjustment Maps before personalizing with them
        result = run_procedure(image, layer, earlier["procedure"], earlier.get("args", {}))
        if result.index(0) != Gimp.PDBStatusType.SUCCESS:
            break  # recorded as the case's outcome
    else:
        result = run_procedure(image, layer, case["procedure"], case.get("args", {}))
    status = result.index(0)
    record = {"id": case["id"], "status": status.value_nick, "message": None, "report": None}
    if status == Gimp.PDBStatusType.SUCCESS:
        record["report"] = json.loads(result.index(1) or "null")
    else:
        record["message"] = result.index(1) if result.length() > 1 else None
    if not light:
        np.save(os.path.join(folder, "after.npy"), read_drawable(layer, 4))
    record["layers"] = describe_layers(image, folder, light=light)
    record["channels"] = [{"name": c.get_name(), "parasite": parasite(c)} for c in image.get_channels()]
    for index, channel in enumerate(image.get_channels()):
        np.save(os.path.join(folder, "channel%d.npy" % index), read_drawable(channel, 1))
    guides, guide = [], image.find_next_guide(0)
    while guide:
        guides.append([image.get_guide_orientation(guide).value_nick, image.get_guide_position(guide)])
        guide = image.find_next_guide(guide)
    record["guides"] = guides
    record["paths"] = [{"name": p.get_name(), "parasite": parasite(p)} for p in image.get_paths()]
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    record["selection_bounds"] = [x1, y1, x2, y2] if non_empty else None
    record["canvas"] = [image.get_width(), image.get_height()]
    record["precision"] = image.get_precision().value_nick
    record["image_parasite"] = parasite(image, "semantic-enhance-crop")
    record["image_parasites"] = {name: parasite(image, name) for name in image.get_parasite_list()
                                 if name.startswith("semantic-enhance")}
    if case.get("save_xcf", True) and status == Gimp.PDBStatusType.SUCCESS and not light:
        path = os.path.join(folder, "result.xcf")
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path), None)
        reloaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
        record["reloaded_layers"] = [[l.get_name(), parasite(l)] for l in reloaded.get_layers()]
        record["reloaded_image_parasites"] = {name: parasite(reloaded, name) for name in reloaded.get_parasite_list()
                                              if name.startswith("semantic-enhance")}
        reloaded.delete()
    for other in also_open:
        other.delete()
    image.delete()
    return record


records = []
for case in CASES:
    try:
        records.append(run_case(case))
    except Exception:
        records.append({"id": case["id"], "status": "harness-error", "message": traceback.format_exc()})
with open(os.path.join(OUT, "results.json"), "w") as handle:
    json.dump(records, handle, indent=1, default=str)
print("scenario: %d cases done" % len(records), flush=True)
