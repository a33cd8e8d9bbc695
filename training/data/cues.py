"""Semantic cues: masks of faces, skin, sky, water, vegetation and the salient foreground.

They stand in for the scene parser and object detectors of Yan et al. 2016 (ADE20K models cannot be had
here): the style programs use them as a photographer uses hand-drawn masks, and sa-adjust's multi-task
branch can use them as scene-parsing pseudo-labels. Every mask is float32 (H, W) in [0, 1], computed
from an RGB uint8 (H, W, 3) photo at the size it is given (the pairs use a 512 px copy).

How each is made (classical, deterministic, well under a second at 512 px):

- ``faces``: OpenCV Haar cascades (frontal + profile, ``cv2.data.haarcascades``); a detection is kept when
  a fair share of its box is skin-coloured; each becomes an ellipse covering the head.
- ``skin``: a Gaussian chroma model in YCrCb (Cr, Cb), refitted to the detected faces' own skin when
  there are faces (and scaled by 0.6 when there are none); dark pixels are excluded.
- ``sky``: blue or bright-neutral, smooth (low gradient) pixels, weighted to the top of the frame, and
  only regions connected to the top border survive.
- ``water``: blue to teal, smooth, below the upper third, not sky (so a lake is not vegetation).
- ``vegetation``: green to yellow-green hues with some saturation (HSV), never where the water is.
- ``foreground``: saliency (frequency-tuned colour contrast + spectral residual) times a centre prior,
  minus the sky, united with the faces and a body region under each face.

A careful retoucher's masks follow the photo's edges, so the region cues (all but skin) are snapped to
them (``follow_edges``: a wide colour-guided filter, then a smoothstep that decides the undecided band),
and the foreground's remaining undecided band is decided by colour (``decide_by_colour``). What stays soft
is a few pixels at an edge, never a band of half-adjusted colour around a subject (tests/test_data_cues.py).

``cues_for(path_or_rgb)`` caches the masks by the sha256 of the pixels (and the cue version), so each
photo's cues are computed once: ``.cache/cues/<key>.npz`` by default (env ``SEMANTIC_ENHANCE_CUE_CACHE``).
"""

import hashlib
import os

import cv2
import numpy as np
from PIL import Image

CUE_NAMES = ("faces", "skin", "sky", "water", "vegetation", "foreground")
CUE_VERSION = 4  # bump when a cue's recipe changes: old cache entries are then ignored
DEFAULT_CACHE = os.environ.get("SEMANTIC_ENHANCE_CUE_CACHE", os.path.join(".cache", "cues"))

_CASCADES = {}


def _cascade(name):
    if name not in _CASCADES:
        classifier = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
        if classifier.empty():
            raise RuntimeError("OpenCV Haar cascade %s is missing from cv2.data.haarcascades" % name)
        _CASCADES[name] = classifier
    return _CASCADES[name]


def _smoothstep(low, high, x):
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _normalise(x):
    low, high = float(x.min()), float(x.max())
    return (x - low) / (high - low) if high - low > 1e-8 else np.zeros_like(x)


def _as_rgb_uint8(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    if image.dtype != np.uint8:
        scale = 255.0 if image.dtype.kind == "f" else 255.0 / np.iinfo(image.dtype).max
        image = np.clip(image.astype(np.float64) * scale + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


# Masks that follow the photo's edges (what a careful retoucher draws, not a soft airbrush): a colour-guided
# filter (He, Sun & Tang, multichannel) with a wide window makes each cue a local linear function of the
# photo's colour, so a cue takes one value across a region of one colour and changes where the colour
# changes (a blurred or dilated cue stops spilling over the subject's rim, a uniform backdrop stops being
# half one category and half another); a smoothstep then decides the undecided band, so what remains soft
# is a few pixels at the edge (anti-aliasing), not a band of half-adjusted colour. Sizes are fractions of
# the long side, so a cue means the same at 512 px and at any other size.
EDGE_RADIUS = 1.0 / 32   # the guided filter's window radius, of the long side (16 px at 512 px)
EDGE_EPS = 1e-3  # the guide is sRGB in [0, 1]: colour steps of ~0.03 and more stop the spread
EDGE_DECIDE = (0.3, 0.7)  # the smoothstep that turns the filtered cue into a mask (0.5 stays 0.5)


def guided_filter(rgb, masks, radius, eps):
    """Colour-guided filter of masks (float32 (H, W) or (K, H, W)) under an RGB uint8 (H, W, 3) guide:
    the same function as ``backend.imaging.upsample.fit_local_affine`` (prior None), evaluated in place."""
    import torch

    from backend.imaging.upsample import fit_local_affine

    masks = np.asarray(masks, np.float32)
    single = masks.ndim == 2
    stack = torch.from_numpy(masks[None] if single else masks)[None]                  # (1, K, H, W)
    guide = torch.from_numpy(np.ascontiguousarray(rgb, np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        coefficients = fit_local_affine(guide, stack, radius, eps, prior=None)[0]      # (4K, H, W)
        coefficients = coefficients.reshape(-1, 4, *coefficients.shape[1:])
        out = (coefficients[:, :3] * guide).sum(1) + coefficients[:, 3]
    out = out.clamp(0.0, 1.0).numpy()
    return out[0] if single else out


def follow_edges(rgb, masks):
    """Cue masks (H, W) or (K, H, W) snapped to the photo's edges: guided filter, then the smoothstep."""
    radius = max(2, round(EDGE_RADIUS * max(rgb.shape[:2])))
    return _smoothstep(EDGE_DECIDE[0], EDGE_DECIDE[1], guided_filter(rgb, masks, radius, EDGE_EPS)).astype(np.float32)


def _colour_log_likelihood(lab, samples):
    """Log-likelihood of Lab colours (N, 3) under one full-covariance Gaussian fitted to ``samples``."""
    mean = samples.mean(0)
    covariance = np.cov(samples, rowvar=False) + np.eye(3) * 4.0  # a floor of 2 Lab units of spread
    offset = lab - mean
    mahalanobis = np.einsum("ni,ij,nj->n", offset, np.linalg.inv(covariance), offset)
    return -0.5 * mahalanobis - 0.5 * np.log(np.linalg.det(covariance))


def decide_by_colour(rgb, mask):
    """Re-decide the undecided pixels of a mask (0.1-0.9) by their colour: which of the two decided parts'
    colour distributions (one Gaussian each, in Lab) they belong to; then snap to the edges again.

    Saliency varies smoothly in space (a blurry spectral residual, the centre prior), so in a region of one
    colour the guided filter keeps its ramp: a band of half-adjusted background around the subject, the
    halo a retoucher's mask would not have. The colour decides it as GrabCut's colour models do (Rother
    et al. 2004), without its graph cut: cheap and deterministic."""
    inside, outside = mask > 0.9, mask < 0.1
    band = ~inside & ~outside
    if inside.sum() < 50 or outside.sum() < 50 or not band.any():
        return mask
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    flat_band = band.ravel()
    score = (_colour_log_likelihood(lab[flat_band], lab[inside.ravel()])
             - _colour_log_likelihood(lab[flat_band], lab[outside.ravel()]))
    decided = mask.copy()
    decided[band] = 1.0 / (1.0 + np.exp(-np.clip(score, -30.0, 30.0)))
    return follow_edges(rgb, decided)


# ---------------------------------------------------------------------------------------------- faces

SKIN_CHROMA_MEAN, SKIN_CHROMA_SIGMA = (152.0, 106.0), (7.0, 7.0)  # (Cr, Cb); YCrCb skin locus literature


def _skin_likelihood(ycrcb, mean=SKIN_CHROMA_MEAN, sigma=SKIN_CHROMA_SIGMA):
    cr, cb = ycrcb[..., 1].astype(np.float32), ycrcb[..., 2].astype(np.float32)
    distance = ((cr - mean[0]) / sigma[0]) ** 2 + ((cb - mean[1]) / sigma[1]) ** 2
    luma_ok = _smoothstep(35.0, 70.0, ycrcb[..., 0].astype(np.float32))
    return np.exp(-0.5 * distance) * luma_ok


def face_boxes(rgb):
    """Faces as (x, y, w, h) boxes in pixels: Haar detections confirmed by skin colour, duplicates merged."""
    rgb = _as_rgb_uint8(rgb)
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    smallest = max(20, min(grey.shape) // 20)
    found = []
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"):
        for flip in (False, True) if "profile" in name else (False,):
            image = grey[:, ::-1] if flip else grey
            boxes = _cascade(name).detectMultiScale(np.ascontiguousarray(image), scaleFactor=1.1, minNeighbors=6,
                                                    minSize=(smallest, smallest))
            for x, y, w, h in (boxes if len(boxes) else []):
                found.append((grey.shape[1] - x - w if flip else x, y, w, h))
    # a broad skin model for confirming detections (lighting shifts a face's chroma a lot)
    skin = _skin_likelihood(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), sigma=(12.0, 12.0))
    kept = []
    for x, y, w, h in sorted(found, key=lambda b: -b[2] * b[3]):
        inner = skin[y + h // 4: y + 3 * h // 4, x + w // 4: x + 3 * w // 4]
        if inner.size == 0 or float((inner > 0.3).mean()) < 0.25:
            continue  # a pattern that looks like a face to the cascade but has no skin in it
        if any(_overlap((x, y, w, h), other) > 0.3 for other in kept):
            continue
        kept.append((int(x), int(y), int(w), int(h)))
    return kept


def _overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / float(min(aw * ah, bw * bh))


def _ellipse_mask(shape, cx, cy, rx, ry):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    radius = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
    return 1.0 - _smoothstep(0.75, 1.15, radius)


def face_mask(shape, boxes):
    mask = np.zeros(shape, np.float32)
    for x, y, w, h in boxes:  # the head: a bit wider and taller than the detector's box
        mask = np.maximum(mask, _ellipse_mask(shape, x + w / 2, y + h * 0.45, w * 0.62, h * 0.8))
    return mask


def body_mask(shape, boxes):
    """A soft region under each face where the person's body usually is (a weaker, wider ellipse)."""
    mask = np.zeros(shape, np.float32)
    for x, y, w, h in boxes:
        mask = np.maximum(mask, 0.8 * _ellipse_mask(shape, x + w / 2, y + h * 2.6, w * 1.5, h * 2.2))
    return mask


# ------------------------------------------------------------------------------------ colour regions

def skin_mask(rgb, boxes=()):
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    mean, sigma, confidence = SKIN_CHROMA_MEAN, SKIN_CHROMA_SIGMA, 0.6
    if boxes:  # refit the chroma model on the centre of the detected faces
        samples = np.concatenate([ycrcb[y + h // 4: y + 3 * h // 4, x + w // 4: x + 3 * w // 4].reshape(-1, 3)
                                  for x, y, w, h in boxes])
        samples = samples[_skin_likelihood(samples[None])[0] > 0.1]
        if len(samples) > 50:
            mean = (float(samples[:, 1].mean()), float(samples[:, 2].mean()))
            sigma = (max(5.0, 2.0 * float(samples[:, 1].std())), max(5.0, 2.0 * float(samples[:, 2].std())))
            confidence = 1.0
    # skin-coloured pixels in a photo without any face are often wood, fur or fruit: trust them less
    mask = confidence * _skin_likelihood(ycrcb, mean, sigma)
    return cv2.GaussianBlur(mask, (0, 0), 1.5)


def sky_mask(rgb):
    height, width = rgb.shape[:2]
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    blue = _smoothstep(-3.0, -15.0, b) * _smoothstep(30.0, 50.0, lightness) * _smoothstep(25.0, 8.0, a)
    overcast = _smoothstep(65.0, 80.0, lightness) * _smoothstep(14.0, 6.0, chroma)
    colour = np.maximum(blue, overcast)
    smooth = _smoothstep(12.0, 4.0, _texture(rgb, spread=1.5))
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    position = np.clip(1.6 - 1.6 * rows, 0.0, 1.0) * np.ones((1, width), np.float32)
    score = colour * smooth * position
    # keep only sky regions that reach the top of the frame (sky is above everything else); wires, masts
    # and branches thinner than ``bridge`` px do not cut the sky below them off (a seam along a cable)
    seed = (score > 0.3).astype(np.uint8)
    bridge = 2 * max(2, round(0.006 * max(height, width))) + 1
    count, labels = cv2.connectedComponents(cv2.dilate(seed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (bridge, bridge))))
    top_labels = set(np.unique(labels[: max(2, height // 12)]).tolist()) - {0}
    keep = (np.isin(labels, list(top_labels)) & (seed > 0)).astype(np.float32) if top_labels else np.zeros_like(score)
    # the texture test leaves a notch along every edge inside the sky; grow the region back over it (a few
    # px, no blur: follow_edges then puts the boundary on the photo's edge, not on the notch's)
    notch = 2 * max(2, round(0.008 * max(height, width))) + 1
    keep = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (notch, notch)))
    return np.clip(colour * position * keep * 1.2, 0.0, 1.0)  # raw: compute_cues snaps it to the edges


def _hsv(rgb):
    """Hue in degrees, saturation and value in [0, 1]."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    return hsv[..., 0] * (360.0 / 256.0), hsv[..., 1] / 255.0, hsv[..., 2] / 255.0


def _texture(rgb, spread=3.0):
    """Local contrast of the lightness (gradient magnitude blurred by ``spread`` px, L units a pixel).

    Any edge raises it within ~2 ``spread`` of itself: a smooth region's cue has a notch there."""
    lightness = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]
    blurred = cv2.GaussianBlur(lightness, (0, 0), 1.0)
    gradient = np.hypot(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(gradient, (0, 0), spread)


def water_mask(rgb, sky):
    """Lakes, rivers and sea: blue to teal (hue 165-250), smooth, below the upper third, not sky.

    Without it a teal lake falls into the vegetation hues and Local Xpro turns it yellow-green."""
    height = rgb.shape[0]
    hue, saturation, value = _hsv(rgb)
    colour = (_smoothstep(150.0, 168.0, hue) * _smoothstep(255.0, 235.0, hue) * _smoothstep(0.12, 0.25, saturation)
              * _smoothstep(0.08, 0.18, value))
    smooth = _smoothstep(14.0, 6.0, _texture(rgb))
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    below = _smoothstep(0.3, 0.5, rows)
    return (colour * smooth * below * (1.0 - sky)).astype(np.float32)


def vegetation_mask(rgb, water=None):
    """Green to yellow-green hues with some saturation; never where the water cue is."""
    hue, saturation, value = _hsv(rgb)
    green = _smoothstep(55.0, 72.0, hue) * _smoothstep(170.0, 150.0, hue)
    mask = green * _smoothstep(0.2, 0.4, saturation) * _smoothstep(0.06, 0.16, value)
    if water is not None:
        mask = mask * (1.0 - water)
    return mask.astype(np.float32)


# --------------------------------------------------------------------------------------- saliency

def _frequency_tuned(rgb):
    """Achanta et al. 2009: distance of each (slightly blurred) pixel's Lab colour from the image mean."""
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (5, 5), 0).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.linalg.norm(lab - lab.reshape(-1, 3).mean(axis=0), axis=2)


def _spectral_residual(rgb, size=64):
    """Hou & Zhang 2007 on a small grey copy: log spectrum minus its local average, back to space."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    small = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2.5)
    return cv2.resize(saliency, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def foreground_mask(rgb, faces=None, bodies=None, sky=None):
    height, width = rgb.shape[:2]
    saliency = 0.6 * _normalise(_frequency_tuned(rgb)) + 0.4 * _normalise(_spectral_residual(rgb))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = np.exp(-(((xs / width - 0.5) / 0.3) ** 2 + ((ys / height - 0.5) / 0.3) ** 2) / 2.0)
    # the spectral residual is computed at 64 px, so it is blurry: snap the saliency to the photo's colour
    # regions before deciding, or its halo (~20 px at 512 px) becomes a band of background in the mask
    radius = max(2, round(EDGE_RADIUS * max(height, width)))
    saliency = _normalise(guided_filter(rgb, _normalise(saliency * (0.3 + 0.7 * centre)), radius, EDGE_EPS))
    threshold = min(0.75, float(saliency.mean() + 0.5 * saliency.std()))
    mask = 1.0 / (1.0 + np.exp(-(saliency - threshold) / 0.07))
    if sky is not None:  # a bright sky is salient to colour contrast, but it is the background
        mask = mask * (1.0 - sky)
    if faces is not None:
        mask = np.maximum(mask, faces)
    if bodies is not None:
        mask = np.maximum(mask, bodies)
    return mask.astype(np.float32)  # raw: compute_cues snaps it to the edges


# ------------------------------------------------------------------------------------- public API

def compute_cues(rgb):
    """All cues of one photo: {name: float32 (H, W) in [0, 1]} for every name in ``CUE_NAMES``.

    The region cues (faces, sky, water, vegetation, foreground) are snapped to the photo's edges by
    ``follow_edges``; skin is a per-pixel colour model and follows them already."""
    rgb = _as_rgb_uint8(rgb)
    shape = rgb.shape[:2]
    boxes = face_boxes(rgb)
    sky = sky_mask(rgb)
    water = water_mask(rgb, sky)
    # one guided filter for the four (the colour statistics of the windows are shared)
    faces, sky, water, vegetation = follow_edges(rgb, np.stack([face_mask(shape, boxes), sky, water,
                                                                 vegetation_mask(rgb, water)]))
    water = water * (1.0 - sky)
    vegetation = vegetation * (1.0 - water)
    # the body under a face is foreground, but not where the "body" ellipse runs into the sky
    bodies = body_mask(shape, boxes) * (1.0 - sky) if boxes else None
    foreground = decide_by_colour(rgb, follow_edges(rgb, foreground_mask(rgb, faces, bodies, sky))) * (1.0 - sky)
    return {"faces": faces, "skin": skin_mask(rgb, boxes).astype(np.float32), "sky": sky, "water": water,
            "vegetation": vegetation, "foreground": np.maximum(foreground, faces)}


def fit_longer_side(image, max_side):
    """A PIL image downscaled (Lanczos) so that its longer side is at most ``max_side``; smaller ones as is."""
    if max_side and max(image.size) > max_side:
        scale = max_side / float(max(image.size))
        image = image.resize((max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))),
                             Image.LANCZOS)
    return image


def load_rgb(path, max_side=None):
    """A photo as RGB uint8 (H, W, 3) (16-bit and palette images converted), optionally downscaled."""
    with Image.open(path) as image:
        return np.asarray(fit_longer_side(image.convert("RGB"), max_side))


def content_key(rgb):
    rgb = _as_rgb_uint8(rgb)
    digest = hashlib.sha256(("cues-v%d-%dx%d|" % (CUE_VERSION, rgb.shape[1], rgb.shape[0])).encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def cues_for(image, cache_dir=DEFAULT_CACHE):
    """Cues of an RGB array (or a path, read at full size), computed once and cached as uint8 masks."""
    rgb = load_rgb(image) if isinstance(image, (str, os.PathLike)) else _as_rgb_uint8(image)
    key = content_key(rgb)
    path = os.path.join(cache_dir, key[:2], key + ".npz") if cache_dir else None
    if path and os.path.isfile(path):
        with np.load(path) as stored:
            return {name: stored[name].astype(np.float32) / 255.0 for name in CUE_NAMES}
    cues = compute_cues(rgb)
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path + ".%d.tmp.npz" % os.getpid()
        np.savez_compressed(temporary, **{name: to_uint8(mask) for name, mask in cues.items()})
        os.replace(temporary, path)
        cues = {name: to_uint8(mask).astype(np.float32) / 255.0 for name, mask in cues.items()}
    return cues


def to_uint8(mask):
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
