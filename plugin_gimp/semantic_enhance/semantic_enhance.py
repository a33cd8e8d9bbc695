#!/usr/bin/env python3
"""Semantic Enhance for GIMP 3: the entries under Filters → Semantic Enhance, as PDB procedures.

This file only registers the procedures (it needs nothing but GIMP's own modules, so the menu
appears even when GIMP's Python lacks numpy or protobuf, and the entry then says what is missing).
The work is in ``se_plugin.procedures``. Every entry also runs non-interactively with its defaults.
"""

import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PREFIX = "plug-in-semantic-enhance-"
MENU = "<Image>/Filters/Semantic Enhance"
RW = GObject.ParamFlags.READWRITE


def _choice(*items):
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(items):
        choice.add(nick, index, label, "")
    return choice


def _models(procedure):
    procedure.add_choice_argument("model", "_Model", "Which learned model adjusts the photo",
                                  _choice(("sa-adjust", "Semantics-aware adjustment (Nam & Kim 2017)"),
                                          ("fcn-stylize", "FCN stylization (Zhu & Yu 2018)")), "sa-adjust", RW)
    procedure.add_string_argument("style", "_Style", "Style name (empty: the model's first style; "
                                  "Backend… lists each model's styles)", "", RW)


def _use_selection(procedure):
    procedure.add_boolean_argument("use-selection", "Limit to the _selection",
                                   "Apply only where the selection is (soft edges blend)", True, RW)


def _strength(procedure):
    procedure.add_double_argument("strength", "S_trength", "How much of the style: 0 keeps the photo, 1 applies "
                                  "it fully", 0.0, 1.0, 1.0, RW)


def _adjust_args(procedure):
    _models(procedure)
    _strength(procedure)
    _use_selection(procedure)


def _maps_args(procedure):
    _models(procedure)


def _personalize_args(procedure):
    _models(procedure)
    procedure.add_choice_argument("source", "Adjustment map _from", "What replaces the predicted adjustment map",
                                  _choice(("selection", "The selection"), ("channel", "A channel"),
                                          ("maps", "The painted \"Adjustment map k\" channels")), "selection", RW)
    procedure.add_channel_argument("channel", "_Channel", "The channel used when the map comes from a channel",
                                   True, RW)
    procedure.add_string_argument("selected-preset", "Preset where _selected", "The preset for selected pixels, "
                                  "by name (Backend… lists each style's presets; empty: the style's subject)", "", RW)
    procedure.add_string_argument("unselected-preset", "Preset _elsewhere", "The preset everywhere else "
                                  "(empty: the style's background)", "", RW)
    _strength(procedure)


def _aesthetic_args(procedure):
    procedure.add_choice_argument("method", "_Method", "Enhancer of Deng et al. 2018",
                                  _choice(("piecewise", "Piecewise colour curves"),
                                          ("deep-filter", "Deep filtering")), "piecewise", RW)
    _use_selection(procedure)


def _crop_args(procedure):
    procedure.add_int_argument("count", "_Alternatives", "How many ranked crops (the best plus alternatives)",
                               1, 20, 5, RW)
    procedure.add_double_argument("aspect-ratio", "Aspect _ratio", "Width / height of the crop (0: free)",
                                  0.0, 20.0, 0.0, RW)
    procedure.add_boolean_argument("apply-crop", "_Crop the image", "Also crop the image to the best box", False, RW)


def _editable_filters(procedure):
    procedure.add_boolean_argument("editable-filters", "Also as editable _GEGL filters (approximate)",
                                   "Add a hidden copy of the layer with the stack as non-destructive GEGL filters; "
                                   "GEGL works in linear light, so it only approximates the result", False, RW)


def _progressive_args(procedure):
    procedure.add_int_argument("steps", "_Steps", "Number of filter steps (0: the model's default)", 0, 16, 0, RW)
    _use_selection(procedure)
    _editable_filters(procedure)


def _filters_args(procedure):
    procedure.add_file_argument("stack-file", "Filter _stack", "A filter stack JSON file "
                                "({\"filters\": [{\"name\": \"exposure\", \"values\": [0.4]}, ...]})",
                                Gimp.FileChooserAction.OPEN, True, None, RW)
    procedure.add_string_argument("stack-json", "Stack as _text", "The same JSON as text (used instead of the file "
                                  "when given)", "", RW)
    _use_selection(procedure)
    _editable_filters(procedure)


def _score_args(procedure):
    pass  # nothing to choose: the active layer is scored


def _backend_args(procedure):
    procedure.add_string_argument("address", "_Address", "host:port or unix:/path of the daemon "
                                  "(empty: saved, $SEMANTIC_ENHANCE_ADDR, 127.0.0.1:50551)", "", RW)
    procedure.add_string_argument("token-file", "_Token file", "File holding the daemon's token "
                                  "(semantic-enhance serve writes it)", "", RW)
    procedure.add_string_argument("token", "Token (_instead of a file)", "Paste the token itself", "", RW)
    procedure.add_boolean_argument("save", "_Remember these settings", "Save them for every entry", True, RW)


def _learn_args(procedure):
    procedure.add_string_argument("name", "Style _name", "The new style's name (letters, digits, - and _); Auto "
                                  "Adjust lists it afterwards", "", RW)
    procedure.add_choice_argument("source", "_Pairs from", "Where the before/after pairs come from",
                                  _choice(("folders", "Two folders (matched by file name)"),
                                          ("open-images", "The open images (\"X\" and \"X-after\" or \"X-edited\")")),
                                  "folders", RW)
    procedure.add_file_argument("before-folder", "_Before folder", "The photos as shot",
                                Gimp.FileChooserAction.SELECT_FOLDER, True, None, RW)
    procedure.add_file_argument("after-folder", "_After folder", "The same photos as you retouched them, with "
                                "the same file names (any extension)", Gimp.FileChooserAction.SELECT_FOLDER, True,
                                None, RW)
    procedure.add_boolean_argument("replace", "_Replace a learnt style of this name",
                                   "Otherwise an existing style of the name is kept and the run refused", False, RW)
    procedure.add_boolean_argument("position-terms", "_Position effects",
                                   "Learn effects that depend on where a pixel is (vignettes, graduated tints); off: "
                                   "a colour-only look", True, RW)
    procedure.add_double_argument("regularisation", "_Smoothness", "How smooth the learnt look is kept: above 1 for "
                                  "fewer or noisier pairs, below 1 for many clean pairs", 0.1, 10.0, 1.0, RW)


# name -> (menu label, help, add-arguments); GIMP sorts the menu entries by label
ENTRIES = {
    "adjust": ("_Auto Adjust…", "Learned local adjustment of the layer in a chosen style, as a new layer",
               _adjust_args),
    "maps": ("Show Adjustment _Maps…", "The K semantic adjustment maps the model predicts, as channels to paint on",
             _maps_args),
    "personalize": ("_Personalize with Selection or Channel…", "Replace the predicted adjustment map with the "
                    "selection, a channel or painted maps, as a new layer", _personalize_args),
    "aesthetic": ("Aesthetic _Enhance…", "Aesthetics-driven enhancement (piecewise or deep filtering), "
                  "as a new layer", _aesthetic_args),
    "crop": ("_Crop Guide…", "Guides and a selection at the best aesthetic crop, alternatives as paths",
             _crop_args),
    "progressive": ("P_rogressive Enhance…", "An interpretable filter stack found step by step: a layer group with "
                    "one layer per step", _progressive_args),
    "filters": ("Apply _Filter Stack…", "Replay a filter stack (JSON) on the layer, as a new layer", _filters_args),
    "score": ("_Score…", "The layer's scores in words (the critic's aesthetic score and any other score the "
              "daemon gives); the image is not changed, the scores are kept as an image parasite", _score_args),
    "learn-style": ("_Learn Style…", "Teach the daemon your style from before/after pairs (two folders, or "
                    "the open images); Auto Adjust then lists it", _learn_args),
    "backend": ("_Backend…", "Daemon address and token, a connection test and the hosted models", _backend_args),
}


def _return(procedure, status, report=None, message=None):
    error = GLib.Error(message) if message else GLib.Error()
    values = procedure.new_return_values(status, error)
    if report is not None:
        import json
        values.remove(1)
        values.insert(1, GObject.Value(GObject.TYPE_STRING, json.dumps(report)))
    return values


def _failure(procedure, error):
    """A GIMP message in words, and the same words as the procedure's error for scripts."""
    try:
        from se_plugin.procedures import UserError
        from se_plugin.transport import BackendError
        known = isinstance(error, (UserError, BackendError))
    except ImportError:
        known = False
    if isinstance(error, ImportError):
        message = ("Semantic Enhance needs numpy and protobuf in GIMP's Python (%s). On Debian/Ubuntu: "
                   "sudo apt install python3-numpy python3-protobuf" % error)
    elif known:
        message = str(error)
    else:
        traceback.print_exc()
        message = "Semantic Enhance failed unexpectedly: %s: %s" % (type(error).__name__, error)
    return _return(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, message=message)


def _style_list(dialog, config, names, styles):
    """Auto Adjust's style list: a combo of the styles the daemon lists (ListModels), bound to the "style"
    argument, in place of its text field. False when it cannot be made (the text field stays)."""
    try:
        gi.require_version("Gtk", "3.0")
        from gi.repository import GimpUi, Gtk
        model = Gtk.ListStore(str, str)
        for name, label in styles:
            model.append([name, label])
        combo = GimpUi.prop_string_combo_box_new(config, "style", model, 0, 1)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        row.pack_start(Gtk.Label(label="Style (the daemon's):"), False, False, 0)
        row.pack_start(combo, True, True, 0)
        area = dialog.get_content_area()
    except Exception:  # noqa: BLE001  (an older GimpUi: the text field does)
        traceback.print_exc()
        return False
    dialog.fill([name for name in names if name != "style"])  # only once the list exists
    area.pack_start(row, False, False, 6)
    row.show_all()
    return True


def _dialog(procedure, config, title, names=None, styles=None):
    """GIMP's dialog for the procedure's arguments (``names``: which ones; None: all but the standard ones);
    ``styles`` [(name, label)]: the style argument as a list of those."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi
    GimpUi.init("semantic_enhance")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    if not styles or not _style_list(dialog, config, [spec.name for spec in config.list_properties()
                                                      if spec.name not in STANDARD], styles):
        dialog.fill(names)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


STANDARD = ("procedure", "run-mode", "image", "drawables")  # what GIMP fills in itself


def run_image(procedure, run_mode, image, drawables, config, data):
    entry = procedure.get_name()[len(PREFIX):]
    title = ENTRIES[entry][0].replace("_", "").rstrip("…")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and entry != "score":  # Score has nothing to ask
        styles = None
        if entry in ("adjust", "maps", "personalize"):
            try:
                from se_plugin.procedures import prefill_style, style_choices
                prefill_style(config)
                styles = style_choices()
            except ImportError:
                pass  # the run below explains what GIMP's Python lacks
        if not _dialog(procedure, config, "Semantic Enhance: " + title, styles=styles):
            return _return(procedure, Gimp.PDBStatusType.CANCEL)
    try:
        Gegl.init(None)
        from se_plugin.procedures import run_image_entry
        report = run_image_entry(entry, title, image, drawables, config)
    except Exception as error:  # noqa: BLE001  (every failure becomes a message in words)
        return _failure(procedure, error)
    if interactive and entry == "score":  # in words for the user; scripts read the report
        Gimp.message(report["text"])
    return _return(procedure, Gimp.PDBStatusType.SUCCESS, report)


def run_learn(procedure, config, data):
    interactive = config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE
    try:
        if interactive and not _dialog(procedure, config, "Semantic Enhance: Learn Style",
                                       ["name", "source", "before-folder", "after-folder", "replace"]):
            return _return(procedure, Gimp.PDBStatusType.CANCEL)
        Gegl.init(None)
        from se_plugin.procedures import learn_style
        report = learn_style(config, interactive)
    except Exception as error:  # noqa: BLE001
        return _failure(procedure, error)
    return _return(procedure, Gimp.PDBStatusType.SUCCESS, report)


def run_backend(procedure, config, data):
    interactive = config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE
    try:
        from se_plugin.procedures import backend, prefill_backend_dialog
        if interactive:
            prefill_backend_dialog(config)
            if not _dialog(procedure, config, "Semantic Enhance: Backend", ["address", "token-file", "token", "save"]):
                return _return(procedure, Gimp.PDBStatusType.CANCEL)
        report = backend(config, interactive)
    except Exception as error:  # noqa: BLE001
        return _failure(procedure, error)
    return _return(procedure, Gimp.PDBStatusType.SUCCESS, report)


class SemanticEnhance(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [PREFIX + entry for entry in ENTRIES]

    def do_create_procedure(self, name):
        entry = name[len(PREFIX):]
        label, blurb, add_arguments = ENTRIES[entry]
        if entry in ("backend", "learn-style"):  # not about a layer: runs with or without an open image
            run = run_backend if entry == "backend" else run_learn
            procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
            procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                        Gimp.RunMode.INTERACTIVE, RW)
        else:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_image, None)
            procedure.set_image_types("RGB*, GRAY*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(label)
        procedure.add_menu_path(MENU)
        procedure.set_documentation(blurb, blurb + ". Talks to the Semantic Enhance daemon "
                                    "(semantic-enhance serve); see Backend… for its address.", name)
        procedure.set_attribution("Semantic Enhance", "Semantic Enhance authors", "2026")
        add_arguments(procedure)
        procedure.add_string_return_value("report", "Report", "What was added, as JSON", "", RW)
        return procedure


Gimp.main(SemanticEnhance.__gtype__, sys.argv)
