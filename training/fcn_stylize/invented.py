"""Looks the tests invent, made "by another application": plain numpy/OpenCV programs the learner never sees.

Each maps a float32 (h, w, 3) sRGB photo in [0, 1] to its retouched version, at any size (positions are
fractions of the frame). They are deliberately outside the learner's own families: the vignette falls
with a smoothstep of the radius (not r⁴), the sky tint needs blue *and* high up, the tone curve has a hard
shoulder. ``PHOTOS`` are the real photographs pip installs with scikit-image, scikit-learn and matplotlib:
the learner sees ``TRAIN``, the numbers are measured on ``HELD_OUT``.
"""

import numpy as np
import cv2


def _lab(rgb):
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def _rgb(lab):
    return np.clip(cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def _smoothstep(edge0, edge1, x):
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _grid(rgb):
    height, width = rgb.shape[:2]
    y = ((np.arange(height) + 0.5) / height)[:, None]    # 0 top .. 1 bottom
    x = ((np.arange(width) + 0.5) / width)[None, :]
    return y, x


def shoulder_curve(value):
    """A film-like tone curve: lifted blacks, a steep middle and a strong highlight shoulder."""
    return 0.04 + 0.94 * (1.0 - np.exp(-3.2 * value)) / (1.0 - np.exp(-3.2))


def curve_hue_shift(rgb):
    """Tone curve with a strong shoulder on every channel, then hues turned 18° and chroma +20 %."""
    lab = _lab(shoulder_curve(rgb))
    angle = np.deg2rad(18.0)
    a, b = lab[..., 1], lab[..., 2]
    lab[..., 1], lab[..., 2] = 1.2 * (a * np.cos(angle) - b * np.sin(angle)), 1.2 * (a * np.sin(angle) + b * np.cos(angle))
    return _rgb(lab)


def vignette(rgb):
    """A warm lift (a little more red, less blue), then a vignette: light falls by up to 55 % in the corners."""
    warm = np.clip(rgb * np.array([1.06, 1.0, 0.9], np.float32) + 0.02, 0, 1)
    y, x = _grid(rgb)
    radius = np.sqrt(((x - 0.5) * 2) ** 2 + ((y - 0.5) * 2) ** 2) / np.sqrt(2)
    return warm * (1.0 - 0.55 * _smoothstep(0.25, 1.0, radius))[..., None]


def sky_tint(rgb):
    """Only the sky: blue pixels in the upper part turn deeper and more violet (a graduated, colour-keyed tint)."""
    lab = _lab(rgb)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2HSV)
    blue = _smoothstep(0.08, 0.25, hsv[..., 1]) * np.exp(-((hsv[..., 0] - 215.0) / 35.0) ** 2)
    y, _ = _grid(rgb)
    upper = 1.0 - _smoothstep(0.3, 0.65, y)
    weight = blue * upper
    lab[..., 0] -= 12.0 * weight
    lab[..., 1] += 10.0 * weight
    lab[..., 2] -= 14.0 * weight
    return _rgb(lab)


def split_toning(rgb):
    """Teal shadows, orange highlights, a little more contrast."""
    lab = _lab(rgb)
    light = lab[..., 0] / 100.0
    shadows, highlights = (1.0 - light) ** 2, light ** 2
    lab[..., 0] = 100.0 * np.clip(0.5 + 1.15 * (light - 0.5), 0, 1)
    lab[..., 1] += -12.0 * shadows + 8.0 * highlights
    lab[..., 2] += -14.0 * shadows + 18.0 * highlights
    return _rgb(lab)


LOOKS = {"curve + hue shift": curve_hue_shift, "vignette": vignette, "sky-only tint": sky_tint,
         "split toning": split_toning}


def _photos():
    from skimage import data
    from sklearn.datasets import load_sample_image
    import matplotlib.cbook

    hopper = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1]
    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
            "rocket": data.rocket(), "hubble": data.hubble_deep_field(), "immunohistochemistry":
            data.immunohistochemistry(), "retina": data.retina(), "colorwheel": data.colorwheel(),
            "china": load_sample_image("china.jpg"), "flower": load_sample_image("flower.jpg"),
            "grace-hopper": np.ascontiguousarray(hopper)}


TRAIN = ("astronaut", "coffee", "china", "hubble", "immunohistochemistry", "retina", "colorwheel", "grace-hopper")
HELD_OUT = ("chelsea", "flower", "rocket")


def photos(names, side=None):
    """{name: float32 (h, w, 3) sRGB in [0, 1]}, the long side at most ``side``."""
    every = _photos()
    out = {}
    for name in names:
        rgb = every[name].astype(np.float32) / 255.0
        if side and max(rgb.shape[:2]) > side:
            scale = side / max(rgb.shape[:2])
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        out[name] = np.ascontiguousarray(rgb)
    return out
