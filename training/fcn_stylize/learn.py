"""Learn a user's look from about ten before/after pairs: a ``backend.imaging.looks.Look`` by least squares.

The look is linear in its parameters (the quadratic colour basis, a 17^3 LUT of colour changes and 11 position
terms times coarse colour LUTs, see ``looks.py``), so fitting it is one regularised linear solve, not a training
loop (since format 3, plus a height profile times its own colour LUT: bilinear, a few alternating rounds after
that solve, ``solve``):

    minimise  sum_i mean_pixels |c + lut(c) + spatial(c, x, y) - after|²        (each pair weighs the same)
              + SMOOTH * |second differences of the LUT along r, g, b|²         (no ripples between samples,
              + RIDGE * |lut|² + SPATIAL_RIDGE * |spatial|²                      empty corners stay identity)

on copies of the pairs with the long side at most ``SIDE`` pixels. Ten pairs cover only part of the colour
cube; the smoothness term carries the fitted change into the empty nodes and the ridge holds far corners at
the identity, which is what keeps held-out photos right. The errors reported are CIELab distances (ΔE76,
mean over pixels) as a fraction of the input's distance to the look ("ratio"), on the pairs (training) and
on each pair while it was left out of a fit (held out, k-fold with k = min(5, pairs)).
"""

import math
import os

import cv2
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as splinalg
import torch

from backend.imaging import color, looks

SIDE = 384            # the long side the pairs are fitted at
LUT_SIZE = 17
SMOOTH = 1e-4         # chosen on the invented looks of tests/test_fcn_stylize.py (see docs/learn-style.md)
RIDGE = 1e-6
QUADRATIC_RIDGE = 1e-6
SPATIAL_SMOOTH = 1e-5
SPATIAL_RIDGE = 3e-6   # 1e-6 before the position terms were indexed in Lab (docs/learn-style.md)
SPACE = "lch"          # the position terms' colour index (format 3); "lab" learns the format-2 look
NEUTRAL_TIE = 0.0      # lch: a weight holding the hue nodes at zero chroma to one value (off: the data does)
PROFILE_SMOOTH = 1e-7  # the height profile's second differences (weak: every colour's change with height informs it)
PROFILE_ROUNDS = 3     # alternating rounds (position terms and the profile's colour LUT, then the profile)
MIN_PAIRS = 3
ASPECT_TOLERANCE = 0.01
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


class StyleError(ValueError):
    """Input that cannot teach a style (one sentence; nothing is written)."""


# -- pairs ------------------------------------------------------------------------------------------

def _images(folder):
    if not os.path.isdir(folder):
        raise StyleError("%s is not a folder" % folder)
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
            if stem in found:
                raise StyleError("%s has two images named %s (%s and %s): keep one"
                                 % (folder, stem, os.path.basename(found[stem]), name))
            found[stem] = os.path.join(folder, name)
    return found


def match_pairs(before_dir, after_dir):
    """[(name, before path, after path)] matched by file name without extension (a raw editor's export may
    change it). Every image must have its partner, and there must be at least MIN_PAIRS."""
    before, after = _images(before_dir), _images(after_dir)
    lonely = sorted(set(before) ^ set(after))
    if lonely:
        where = ["%s (only in %s)" % (n, before_dir if n in before else after_dir) for n in lonely[:5]]
        raise StyleError("every photo needs its retouched partner of the same name; unmatched: %s%s"
                         % (", ".join(where), " and %d more" % (len(lonely) - 5) if len(lonely) > 5 else ""))
    if len(before) < MIN_PAIRS:
        raise StyleError("a style needs at least %d before/after pairs, found %d in %s and %s"
                         % (MIN_PAIRS, len(before), before_dir, after_dir))
    return [(name, before[name], after[name]) for name in sorted(before)]


def _as_rgb_float(pixels):
    """(H, W, C) u8/u16/f32 -> float32 (H, W, 3) sRGB in [0, 1] (alpha dropped, gray spread)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    rgb = pixels[:, :, :3] if channels >= 3 else pixels[:, :, :1]
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    rgb = rgb.astype(np.float32) / scale
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.clip(rgb, 0.0, 1.0)


def align(name, before, after, side=SIDE):
    """Both images at one size, the smaller of the two and at most ``side`` on the long side (each resized
    with area averaging, so both are equally sharp: a sharp input against a blurred target would teach the
    look to lose contrast). Refused when the two differ by more than a resize."""
    (bh, bw), (ah, aw) = before.shape[:2], after.shape[:2]
    if abs((bw / bh) / (aw / ah) - 1.0) > ASPECT_TOLERANCE:
        raise StyleError("pair %s: the before image is %dx%d and the after image %dx%d; their sizes differ by more "
                         "than a resize (a crop or a rotation?)" % (name, bw, bh, aw, ah))
    scale = min(1.0, side / max(bh, bw), aw / bw)
    size = (max(1, round(bw * scale)), max(1, round(bh * scale)))
    return tuple(image if image.shape[1::-1] == size else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                 for image in (before, after))


def prepare(name, before, after, side=SIDE):
    """One pair of arrays as they were read -> (before, after) float32 (h, w, 3) at the fitting size."""
    return align(name, _as_rgb_float(before), _as_rgb_float(after), side)


def read_pairs(before_dir, after_dir, side=SIDE, on_progress=None):
    """[(name, before, after)] at the fitting size, every pair checked before anything is fitted."""
    from backend.imaging.files import ImageFileError, read_image

    matched = match_pairs(before_dir, after_dir)
    pairs = []
    for index, (name, before_path, after_path) in enumerate(matched):
        try:
            before, after = read_image(before_path), read_image(after_path)
        except ImageFileError as error:
            raise StyleError("pair %s cannot be read: %s" % (name, error)) from None
        pairs.append((name,) + prepare(name, before, after, side))
        if on_progress:
            on_progress((index + 1) / len(matched))
    return pairs


# -- the least-squares fit ----------------------------------------------------------------------------

def trilinear(rgb, size):
    """Colours (P, 3) in [0, 1] -> sparse (P, size^3) trilinear weights of the LUT nodes ([b, g, r] order)."""
    return grid_weights(rgb, (size,) * 3)


def grid_weights(coordinates, nodes, periodic=(False, False, False)):
    """Colours (P, 3) in [0, 1] (c0, c1, c2) -> sparse (P, prod nodes) multilinear weights of a grid with
    ``nodes`` = (n2, n1, n0) nodes (flat index (i2 * n1 + i1) * n0 + i0, like ``trilinear``'s [b, g, r]); a
    periodic axis has n nodes over [0, 1) and wraps (the hue)."""
    count = len(coordinates)
    corners = []
    for axis, (n, wraps) in enumerate(zip(reversed(nodes), reversed(periodic))):
        c = np.clip(coordinates[:, axis], 0.0, 1.0)
        if wraps:
            position = (c * n) % n
            low = np.floor(position).astype(np.int64)
            frac, low = position - low, low % n
            high = (low + 1) % n
        else:
            position = c * (n - 1)
            low = np.minimum(np.floor(position).astype(np.int64), n - 2)
            frac, high = position - low, low + 1
        corners.append((low, high, frac))
    data, cols = [], []
    for corner in range(8):
        weight, index = np.ones(count), np.zeros(count, np.int64)
        for axis in (2, 1, 0):
            low, high, frac = corners[axis]
            bit = (corner >> axis) & 1
            weight = weight * (frac if bit else 1.0 - frac)
            index = index * nodes[2 - axis] + (high if bit else low)
        data.append(weight)
        cols.append(index)
    weights = sparse.csr_matrix((np.concatenate(data), (np.tile(np.arange(count), 8), np.concatenate(cols))),
                                shape=(count, int(np.prod(nodes))))
    weights.sum_duplicates()
    return weights


def spatial_grid(space):
    """The position LUTs' fitted nodes (n2, n1, n0) and which axes wrap: lch (hues, chroma, lightness), the hue
    periodic (the stored LUT repeats the first hue once more, ``expand_hue``); else cubic."""
    if space == "lch":
        lightness, chroma, hues = looks.LCH_NODES
        return (hues, chroma, lightness), (True, False, False)
    m = looks.SPATIAL_LUT_SIZE
    return (m, m, m), (False, False, False)


def expand_hue(luts, space):
    """Fitted LUTs (..., n2, n1, n0) -> stored ones: for lch the first hue repeated after the last, so
    ``looks.trilinear`` wraps around without knowing about hues."""
    return np.concatenate([luts, luts[..., :1, :, :]], axis=-3) if space == "lch" else luts


def _colour_weights(rgb_image, lab, space):
    rgb = torch.from_numpy(rgb_image.reshape(-1, 3).T.astype(np.float64))
    coordinates = looks.spatial_coordinates(torch.from_numpy(lab.T.copy()), rgb, space).T.numpy()
    if space == "rgb":
        return trilinear(coordinates, looks.SPATIAL_LUT_SIZE)
    return grid_weights(coordinates, *spatial_grid(space))


def _terms_times(terms, weights):
    features = sparse.hstack([sparse.diags(term) @ weights for term in terms]).tocsr()
    features.eliminate_zeros()  # a pixel is under 2 of the hats per axis: 40 weights a row, not 88
    return features


def spatial_features(rgb_image, space=SPACE, lab=None):
    """(h, w, 3) -> sparse (h * w, K * G): every position term (5 y-hats, 5 x-hats, r⁴) times the coarse LUT's
    weights at the pixel's ``looks.spatial_coordinates``; for lch also (h * w, Y_NODES * G): the fine y-hats
    times the same weights, from which the height profile's normal equations are contracted (``solve``)."""
    height, width = rgb_image.shape[:2]
    lab = _lab(rgb_image) if lab is None else lab
    terms = looks.spatial_basis(looks.positions(height).view(-1, 1), looks.positions(width).view(1, -1))
    terms = terms.reshape(len(terms), -1).double().numpy()
    weights = _colour_weights(rgb_image, lab, space)
    if space != "lch":
        return _terms_times(terms, weights)
    fine = looks._hats(looks.positions(height).double(), looks.Y_NODES)            # (Y_NODES, h)
    fine = np.repeat(fine.numpy(), width, axis=1)                                   # (Y_NODES, h * w)
    return _terms_times(terms, weights), _terms_times(fine, weights)


def _lab(rgb_image):
    """(h, w, 3) sRGB -> (h * w, 3) float64 Lab / 100."""
    rgb = torch.from_numpy(np.ascontiguousarray(rgb_image)).permute(2, 0, 1).unsqueeze(0).double()
    return (color.rgb_to_lab(rgb)[0] / looks.LAB_SCALE).reshape(3, -1).T.numpy()


def normal_equations(before, after, size, position_terms=True, space=SPACE):
    """One pair's share of the normal equations, each pair weighing the same: (AᵀA, Aᵀt) in blocks, the
    unknowns ordered [quadratic (10), LUT (n^3), spatial (K G)], one column of t per Lab channel (without
    ``position_terms``: no spatial block). For lch also the fine y-hats' blocks ("lf", "pf", "ff", "ft"):
    the height profile's terms, contracted with the profile in ``solve``."""
    rgb = before.reshape(-1, 3).astype(np.float64)
    lab = _lab(before)
    target = _lab(after) - lab
    weight = 1.0 / len(rgb)
    quadratic = color.quadratic_lab_basis(torch.from_numpy(lab.T.copy()).unsqueeze(-1))[..., 0].numpy().T
    lut = sparse.hstack([sparse.csr_matrix(quadratic), trilinear(rgb, size)]).tocsr()
    if not position_terms:
        return {"ll": (lut.T @ lut) * weight, "lt": np.asarray(lut.T @ target) * weight}
    position = spatial_features(before, space, lab)
    if space == "lch":
        position, fine = position
    shares = {"ll": (lut.T @ lut) * weight, "lp": (lut.T @ position) * weight,
              "pp": (position.T @ position) * weight, "lt": np.asarray(lut.T @ target) * weight,
              "pt": np.asarray(position.T @ target) * weight, "space": space}
    if space == "lch":
        shares.update(lf=(lut.T @ fine) * weight, pf=(position.T @ fine) * weight, ff=(fine.T @ fine) * weight,
                      ft=np.asarray(fine.T @ target) * weight)
    return shares


def smoothness(size, nodes=None, periodic=(False, False, False)):
    """Σ over the three axes of DᵀD, D the second difference along that axis of the n^3 grid (or of a grid
    with ``nodes`` (n2, n1, n0); along a periodic axis the differences wrap)."""
    nodes = nodes or (size,) * 3
    total = sparse.csr_matrix((int(np.prod(nodes)),) * 2)
    for axis in range(3):  # the flat index is (c2, c1, c0): c0 varies fastest
        n = nodes[axis]
        if periodic[axis]:
            second = sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n)).tolil()
            second[0, n - 1], second[n - 1, 0] = 1.0, 1.0
        else:
            second = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
        factors = [sparse.identity(k) for k in nodes]
        factors[axis] = second
        d = sparse.kron(sparse.kron(factors[0], factors[1]), factors[2])
        total = total + d.T @ d
    return total.tocsr()


def neutral_tie(nodes):
    """DᵀD, D the differences between neighbouring hues at zero chroma (lch grid (hues, chroma, lightness)):
    a neutral pixel's hue angle is noise, so those nodes are held to one value."""
    hues, chroma, lightness = nodes
    rows, cols, data = [], [], []
    for h in range(hues):
        for l in range(lightness):
            row = h * lightness + l
            rows += [row, row]
            cols += [(h * chroma) * lightness + l, (((h + 1) % hues) * chroma) * lightness + l]
            data += [1.0, -1.0]
    d = sparse.csr_matrix((data, (rows, cols)), shape=(hues * lightness, int(np.prod(nodes))))
    return (d.T @ d).tocsr()


def colour_regulariser(space, smooth, ridge):
    """One position LUT's regulariser: smoothness and ridge (and, for lch, the neutral hues tied)."""
    nodes, periodic = spatial_grid(space)
    regulariser = smooth * smoothness(None, nodes, periodic) + ridge * sparse.identity(int(np.prod(nodes)))
    return regulariser + NEUTRAL_TIE * neutral_tie(nodes) if space == "lch" and NEUTRAL_TIE else regulariser


def _factorise(matrix):
    """Sparse LU of a positive definite system (CSC), symmetric ordering and no pivoting (see ``solve``)."""
    return splinalg.splu(matrix, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}, diag_pivot_thresh=0.0)


def _coarse_on_fine():
    """(Y_NODES, HAT_NODES): the 5 coarse y-hats at the fine nodes (they nest: a coarse hat is a sum of fine ones)."""
    fine = torch.linspace(-1.0, 1.0, looks.Y_NODES, dtype=torch.float64)
    return looks._hats(fine, looks.HAT_NODES).T.numpy()


def solve(shares, size, smooth=SMOOTH, ridge=RIDGE, spatial_smooth=SPATIAL_SMOOTH, spatial_ridge=SPATIAL_RIDGE,
          regularisation=1.0, profile_smooth=PROFILE_SMOOTH, rounds=PROFILE_ROUNDS):
    """Sum the pairs' shares of the normal equations, add the regularisers (the LUTs' ones times
    ``regularisation``), solve -> Look. Shares without a spatial block give a look without position terms.

    Format 3 (lch shares): besides the 5 y-hats' LUTs, a height profile f(y) on Y_NODES fine hats times one
    colour LUT g(c) of its own: out += f(y) g(c). A graduated or sky tint is exactly that (a colour key
    times a fall-off with height), and the product shares what the pairs show: the profile is fitted on
    every colour's change with height, the key on every height's change with colour, so a colour seen
    high up in one photo follows the same fall-off as the sky of another (a full LUT per fine hat, 7 or 9
    hats, overfitted: docs/learn-style.md). It is bilinear, so it is fitted by alternating least squares
    after the plain fit (everything but the product): the 5 y-hats' LUTs give the first profile (their
    leading singular vector), ``rounds`` rounds refine it (``_profile``), and a last solve fits everything
    for the final profile. The look stores the product and the 5 y-hats expanded onto the fine hats."""
    count = len(shares)
    position_terms = "pp" in shares[0]
    space = shares[0].get("space", "lab") if position_terms else "lab"
    ll = sum(s["ll"] for s in shares) / count
    lt = sum(s["lt"] for s in shares) / count
    nodes, _ = spatial_grid(space)
    cells = int(np.prod(nodes))
    terms = len(looks.SPATIAL_TERMS)
    lut_regulariser = regularisation * (smooth * smoothness(size) + ridge * sparse.identity(size ** 3))
    ll = ll + sparse.block_diag([QUADRATIC_RIDGE * sparse.identity(10), lut_regulariser])
    if position_terms:
        lp = sum(s["lp"] for s in shares) / count
        pp = sum(s["pp"] for s in shares) / count
        pt = sum(s["pt"] for s in shares) / count
        colour = regularisation * colour_regulariser(space, spatial_smooth, spatial_ridge)
        pp = pp + sparse.block_diag([colour] * terms)
        matrix, right = sparse.bmat([[ll, lp], [lp.T, pp]]).tocsc(), np.vstack([lt, pt])
    else:
        matrix, right = ll.tocsc(), lt
    # ~1 % filled: a sparse LU is 3x faster than dense; the matrix is positive definite, so no pivoting is
    # needed (the diagonal pivots as Cholesky's would: same solution to 1e-10, a third less fill, 1.8x faster)
    factors = _factorise(matrix)
    solution = factors.solve(right)
    quadratic = np.ascontiguousarray(solution[:10])
    lut = solution[10:10 + size ** 3].T.reshape(3, size, size, size)
    if not position_terms:
        m = looks.SPATIAL_LUT_SIZE
        return looks.Look(torch.from_numpy(quadratic).float(), torch.from_numpy(np.ascontiguousarray(lut)).float(),
                          torch.zeros(terms, 3, m, m, m))
    spatial = solution[10 + size ** 3:].T.reshape(3, terms, cells).transpose(1, 0, 2)      # (K, 3, G)
    if space == "lch":
        lut, quadratic, spatial = _profile(shares, matrix, factors, right, solution, spatial, colour, cells, size,
                                           regularisation * profile_smooth, rounds)
    spatial = expand_hue(spatial.reshape(len(spatial), 3, *nodes), space)
    return looks.Look(torch.from_numpy(np.ascontiguousarray(quadratic)).float(),
                      torch.from_numpy(np.ascontiguousarray(lut)).float(),
                      torch.from_numpy(np.ascontiguousarray(spatial)).float(), space)


def _profile(shares, matrix, factors, right, solution, spatial, colour, cells, size, profile_smooth, rounds):
    """The alternating fit of ``solve``'s height profile: -> (lut, quadratic, spatial (Y_NODES + 6, 3, G)).

    Each round solves the position terms and the profile's colour LUT for the current profile with the LUT
    and the quadratic part held (a system of the position terms' size, factorised in a fraction of the
    whole one's time), then the profile for them (Y_NODES unknowns); the last solve is of everything for
    the final profile: the Schur complement of its colour LUT, through the plain fit's factorisation."""
    count, fine, known = len(shares), looks.Y_NODES, 10 + size ** 3
    lf = (sum(s["lf"] for s in shares) / count).tocsr()
    pf = (sum(s["pf"] for s in shares) / count).tocsr()
    ff = (sum(s["ff"] for s in shares) / count).tocsr()
    ft = sum(s["ft"] for s in shares) / count
    af = sparse.vstack([lf, pf]).tocsr()
    pp, lp = matrix[known:, known:].tocsc(), matrix[:known, known:].tocsc()
    # the 5 y-hats' LUTs keep their place besides the profile: without them the vignette got 0.29 (docs)
    coarse = spatial[:looks.HAT_NODES].reshape(looks.HAT_NODES, -1)                       # (5, 3 G)
    vectors, _, _ = np.linalg.svd(coarse, full_matrices=False)
    profile = _coarse_on_fine() @ vectors[:, 0]
    profile /= profile[np.argmax(np.abs(profile))]
    second = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(fine - 2, fine))
    bending = profile_smooth * (second.T @ second).toarray()
    eye = sparse.identity(cells, format="csr")
    unknowns = solution
    for _ in range(rounds):
        spread = sparse.kron(sparse.csr_matrix(profile[:, None]), eye).tocsr()             # (Y_NODES G, G)
        held = unknowns[:known]
        coupling = (pf @ spread).tocsc()
        reduced = sparse.bmat([[pp, coupling], [coupling.T, spread.T @ ff @ spread + colour]]).tocsc()
        rhs = np.vstack([right[known:] - lp.T @ held, spread.T @ (ft - lf.T @ held)])
        found = _factorise(reduced).solve(rhs)
        unknowns, key = np.vstack([held, found[:-cells]]), found[-cells:]
        residual = ft - af.T @ unknowns                                                      # (Y_NODES G, 3)
        normal, target = bending.copy(), np.zeros(fine)
        for channel in range(3):
            spread_key = sparse.kron(sparse.identity(fine),
                                     sparse.csr_matrix(key[:, channel:channel + 1])).tocsr()  # (Y_NODES G, Y_NODES)
            normal += (spread_key.T @ ff @ spread_key).toarray()
            target += spread_key.T @ residual[:, channel]
        normal += 1e-12 * max(np.trace(normal), 1e-12) * np.eye(fine)
        updated = np.linalg.solve(normal, target)
        scale = updated[np.argmax(np.abs(updated))]
        if not np.isfinite(scale) or abs(scale) < 1e-12:
            break
        profile = updated / scale
    spread = sparse.kron(sparse.csr_matrix(profile[:, None]), eye).tocsr()
    across = (af @ spread).toarray()                                                         # the rest x g
    inner = np.zeros_like(across)
    seen = np.flatnonzero(np.abs(across).max(0) > 0)       # colour nodes no pixel reaches need no solve
    inner[:, seen] = factors.solve(np.ascontiguousarray(across[:, seen]))
    schur = (spread.T @ ff @ spread + colour).toarray() - across.T @ inner
    key = np.linalg.solve(schur, spread.T @ ft - across.T @ solution)                       # (G, 3)
    unknowns = solution - inner @ key
    quadratic = unknowns[:10]
    lut = unknowns[10:10 + size ** 3].T.reshape(3, size, size, size)
    terms = unknowns[10 + size ** 3:].T.reshape(3, -1, cells).transpose(1, 0, 2)          # (11, 3, G)
    ys = profile[:, None, None] * key.T[None] + np.einsum("fk,kcg->fcg", _coarse_on_fine(), terms[:looks.HAT_NODES])
    return lut, quadratic, np.concatenate([ys, terms[looks.HAT_NODES:]])


# -- options (LearnStyle's, the train command's flags) ------------------------------------------------

OPTIONS = {"position_terms": "yes or no (default yes): learn the position terms (vignettes, graduated and sky "
                             "tints), or a colour-only look",
           "regularisation": "a factor from 0.1 to 10 (default 1) on the LUTs' smoothness and ridge: higher is "
                             "smoother and stays nearer the identity where the pairs show nothing"}
REGULARISATION_RANGE = (0.1, 10.0)


def parse_options(options):
    """{name: text} -> keyword arguments of ``learn``; a sentence (StyleError) for an unknown option or value."""
    parsed = {}
    for key, value in sorted((options or {}).items()):
        text = str(value).strip().lower()
        if key == "position_terms":
            if text not in ("yes", "no", "true", "false", "1", "0"):
                raise StyleError("option position_terms is yes or no, got %r" % value)
            parsed["position_terms"] = text in ("yes", "true", "1")
        elif key == "regularisation":
            try:
                factor = float(text)
            except ValueError:
                factor = float("nan")
            low, high = REGULARISATION_RANGE
            if not low <= factor <= high:
                raise StyleError("option regularisation is a number from %g to %g, got %r" % (low, high, value))
            parsed["regularisation"] = factor
        else:
            raise StyleError("unknown option %r; a style takes %s" % (key, "; ".join(
                "%s: %s" % item for item in OPTIONS.items())))
    return parsed


# -- errors -----------------------------------------------------------------------------------------

def lab_distance(first, second):
    """Mean CIELab distance (ΔE76) between two (h, w, 3) sRGB float images in [0, 1]."""
    a, b = (color.rgb_to_lab(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).unsqueeze(0).double())
            for x in (first, second))
    return float((a - b).norm(dim=1).mean())


def apply_low(look, before):
    out = looks.apply_look(torch.from_numpy(before).permute(2, 0, 1).contiguous(), look)
    return out.clamp(0.0, 1.0).permute(1, 2, 0).numpy()


def ratios(look, pairs):
    """Per pair: (name, distance of the look's output to the after-image, distance of the input to it)."""
    return [(name, lab_distance(apply_low(look, before), after), lab_distance(before, after))
            for name, before, after in pairs]


def summary(rows):
    """Pooled ratio: the summed output distances over the summed input distances."""
    output, source = sum(r[1] for r in rows), sum(r[2] for r in rows)
    return {"lab_distance": output / len(rows), "input_lab_distance": source / len(rows),
            "ratio": output / max(source, 1e-9)}


def learn(pairs, size=LUT_SIZE, folds=5, on_progress=None, position_terms=True, regularisation=1.0, **regularisers):
    """Fit a look on all pairs and measure it: (Look, {"training": summary, "held_out": summary, "pairs": rows,
    "folds", "options"}). ``position_terms`` and ``regularisation``: ``parse_options``.

    ``on_progress(fraction, stage)``. Held out: each pair is measured by a fit on the folds it is not in."""
    progress = on_progress or (lambda fraction, stage: None)
    regularisers["regularisation"] = regularisation
    shares = []
    for index, (name, before, after) in enumerate(pairs):
        shares.append(normal_equations(before, after, size, position_terms))
        progress(0.4 * (index + 1) / len(pairs), "fitting")
    folds = min(folds, len(pairs))
    held_out = []
    for fold in range(folds):
        kept = [s for i, s in enumerate(shares) if i % folds != fold]
        look = solve(kept, size, **regularisers)
        held_out += ratios(look, [p for i, p in enumerate(pairs) if i % folds == fold])
        progress(0.4 + 0.5 * (fold + 1) / folds, "held-out check")
    look = solve(shares, size, **regularisers)
    training = ratios(look, pairs)
    progress(1.0, "done")
    order = {name: i for i, (name, _, _) in enumerate(pairs)}
    held_out.sort(key=lambda row: order[row[0]])
    rows = [{"name": t[0], "input": round(t[2], 3), "training": round(t[1], 3), "held_out": round(h[1], 3)}
            for t, h in zip(training, held_out)]
    options = {"position_terms": position_terms, "regularisation": regularisation}
    return look, {"training": summary(training), "held_out": summary(held_out), "pairs": rows, "folds": folds,
                  "options": options}


# -- the baseline the issue names --------------------------------------------------------------------

def quadratic_baseline(pairs):
    """A least-squares global quadratic fit in Lab (one 3x10 matrix of Zhu & Yu's basis for all pixels):
    returns a function (h, w, 3) sRGB -> (h, w, 3) sRGB."""
    def lab(x):
        return color.rgb_to_lab(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).unsqueeze(0).double())[0]

    design, target = [], []
    for _, before, after in pairs:
        basis = color.quadratic_lab_basis(lab(before) / 100.0).reshape(10, -1).T.numpy()
        weight = 1.0 / math.sqrt(len(basis))
        design.append(basis * weight)
        target.append(lab(after).reshape(3, -1).T.numpy() / 100.0 * weight)
    matrix, *_ = np.linalg.lstsq(np.vstack(design), np.vstack(target), rcond=None)

    def apply(before):
        basis = color.quadratic_lab_basis(lab(before) / 100.0).reshape(10, -1).T.numpy()
        out = torch.from_numpy((basis @ matrix).T.reshape(3, *before.shape[:2]) * 100.0).unsqueeze(0)
        return color.lab_to_rgb(out)[0].clamp(0, 1).permute(1, 2, 0).float().numpy()
    return apply
