"""The one registry of styles and their presets: the models, the trainers, the CLI and (through ListModels)
the GIMP plug-in all read it. Nothing here imports torch, so clients can read it too.

A *style* is a look a model learns (Yan et al.'s three local styles, Zhu & Yu's global "actions").
A *preset* is one of the K adjustments a semantic adjustment map chooses between (Nam & Kim 2017): the
map says, per pixel, how much of each preset applies. Presets have names in the user's words, in the
order of the weights' map channels; the test ``test_preset_names_say_where_each_preset_applies`` checks
each name against the shipped weights (the "subject" channel is high on the photo's salient subject).

    >>> get("foreground-pop-out").preset_index("background")
    1
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    name: str
    title: str                 # as a menu says it
    summary: str
    paper: str
    local: bool                # spatially varying (semantic) or one global action
    presets: tuple = ()        # sa-adjust's K presets, in the map's channel order
    selected: str = ""         # personalisation defaults: the preset painted where the user selects ...
    unselected: str = ""       # ... and the one everywhere else
    brush: bool = False        # a brush effect follows the colour mapping (watercolor)

    def preset_index(self, preset):
        """A preset given by name or by number -> its channel index (ValueError with a sentence)."""
        if isinstance(preset, str) and not preset.isdigit():
            if preset not in self.presets:
                raise ValueError("style %r has no preset %r; its presets are: %s"
                                 % (self.name, preset, ", ".join(self.presets) or "none"))
            return self.presets.index(preset)
        index = int(preset)
        if not 0 <= index < len(self.presets):
            raise ValueError("style %r has presets 0 to %d (%s), not %d"
                             % (self.name, len(self.presets) - 1, ", ".join(self.presets), index))
        return index


YAN = "Yan et al. 2016, as learned by Nam & Kim 2017 and Zhu & Yu 2018"
ZHU_YU = "Zhu & Yu 2018"

STYLES = {style.name: style for style in (
    Style("foreground-pop-out", "Foreground Pop-Out", "the subject gains contrast and colour, the background is "
          "muted", YAN, True, presets=("subject", "background"), selected="subject", unselected="background"),
    Style("local-xpro", "Local Xpro", "cross-processing with its own profile for sky, vegetation, people and the "
          "rest", YAN, True, presets=("subject", "sky", "vegetation", "background"), selected="subject", unselected="background"),
    Style("watercolor", "Watercolor", "foreground pop-out, then brush strokes: colour flattened within small "
          "regions", YAN, True, presets=("subject", "background"), selected="subject", unselected="background",
          brush=True),
    Style("cold", "Cold", "a global vintage action: faded blacks, a cyan-blue cast, less saturation", ZHU_YU, False),
    Style("spring", "Spring", "a global vitality action: brighter, more saturated, fresh yellow-green", ZHU_YU, False),
)}

LOCAL = tuple(name for name, style in STYLES.items() if style.local)
GLOBAL = tuple(name for name, style in STYLES.items() if not style.local)


def get(name):
    if name not in STYLES:
        raise ValueError("unknown style %r; the styles are: %s" % (name, ", ".join(STYLES)))
    return STYLES[name]
