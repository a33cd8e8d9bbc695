"""A filter stack as GIMP 3 non-destructive GEGL filters the user can still edit: an APPROXIMATION.

The EXPOSURE/PIEA filters act on sRGB-encoded values; GEGL's operations act in linear light. With
sRGB taken as a 2.2 power curve, black & white carries over as it is, exposure and white-balance
gains become powers of 2.2, and saturation and contrast are matched at mid-tones. Gamma would carry
over exactly but ``gegl:gamma`` has an aux pad, which GIMP 3.0 refuses as a non-destructive filter;
tone and colour curves have no GEGL counterpart. Those are left out (the exact stack stays in the
parasite, and the daemon's pixels are the reference). No GIMP here: ``plan`` is tested on the host.
"""

DISPLAY_GAMMA = 2.2
LUMINANCE = (0.27, 0.67, 0.06)  # the weights the white-balance filter keeps luminance with


def _white_balance(values):
    red, green, blue = values
    norm = 1e-5 + LUMINANCE[0] * red + LUMINANCE[1] * green + LUMINANCE[2] * blue
    gains = [(v / norm) ** DISPLAY_GAMMA for v in values]
    return "gegl:channel-mixer", {"preserve-luminosity": False, "rr-gain": gains[0], "rg-gain": 0.0, "rb-gain": 0.0,
                                  "gr-gain": 0.0, "gg-gain": gains[1], "gb-gain": 0.0,
                                  "br-gain": 0.0, "bg-gain": 0.0, "bb-gain": gains[2]}


MAPPINGS = {
    "exposure": lambda v: ("gegl:exposure", {"exposure": v[0] * DISPLAY_GAMMA}),
    "white_balance": _white_balance,
    # the HSV boost adds up to 0.4 (1 - s) saturation at mid value; a uniform scale of 1 + 0.5 w is its mean
    "saturation": lambda v: ("gegl:saturation", {"scale": 1.0 + 0.5 * v[0]}),
    # the luminance S-curve's slope at mid-grey is pi/2, blended in with weight w
    "contrast": lambda v: ("gegl:brightness-contrast", {"contrast": 1.0 + 0.5708 * v[0], "brightness": 0.0}),
    "bw": lambda v: ("gegl:saturation", {"scale": 1.0 - v[0]}),
}


def plan(stack_json):
    """[(label, GEGL operation, properties)] for the filters that have a counterpart; and the skipped labels."""
    steps, skipped = [], []
    for item in (stack_json or {}).get("filters", []):
        name, values = item.get("name", ""), [float(v) for v in item.get("values", [])]
        label = item.get("label") or name
        if name in MAPPINGS and values:
            operation, properties = MAPPINGS[name](values)
            steps.append((label, operation, properties))
        else:
            skipped.append(label)
    return steps, skipped
