"""BRISQUE (Mittal, Moorthy & Bovik 2012), the ``score`` task's independent, no-reference scorer.

It shares nothing with the critic (no backbone, no training of ours), so a photo the critic misjudges
gets a second opinion. Natural photographs have mean-subtracted, contrast-normalised (MSCN) luminance
that is close to Gaussian; distortions bend its distribution and that of neighbouring pixels' products.
36 features describe those shapes at two scales, and an RBF support-vector regressor trained on the
LIVE database (Release 2) maps them to a score, about 0 (best) to 100 (worst): **lower is better**.

The features follow OpenCV's ``quality::QualityBRISQUE`` (opencv_contrib), because the shipped
regressor was trained on exactly those features: at each scale an asymmetric generalised Gaussian
(AGGD) fit of the MSCN image (its shape and mean variance) and of the four products with the right,
lower, lower-right and upper-right neighbour (shape, mean, left and right variance); the second scale
is a bicubic half-size copy. The regressor and the feature ranges are OpenCV's
``brisque_model_live.yml`` / ``brisque_range_live.yml`` (Apache-2.0), as Debian's ``opencv-data``
ships them; they are read with OpenCV's own YAML reader (``cv2.ml``; plain text, no pickle) after the
manifest's sha256 check, and the regression is evaluated here. Provenance and verification against
OpenCV: ``backend/weights/critic.md``.

BRISQUE depends on scale (its statistics are of neighbouring pixels), so it is computed on the
daemon's view (long side ``upsample.NETWORK_SIDE`` = 512 px, area-averaged, or the layer itself when
smaller): close to LIVE's 768 x 512 photographs, the same for any photo size, and ~10 ms.
"""

import math

import cv2
import numpy as np

MODEL_FILE = "brisque_model_live.yml"
RANGE_FILE = "brisque_range_live.yml"
# shifts (rows, columns) of the four neighbour products: right, below, below-right, above-right
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
# OpenCV's shape search: gamma on a 0.001 grid from 0.2 to 10, the best match of the moment ratio
_GRID = 0.2 + 0.001 * np.arange(9800)
_LG = np.vectorize(math.lgamma)
_RATIO = np.exp(2 * _LG(2 / _GRID) - _LG(1 / _GRID) - _LG(3 / _GRID))   # Gamma(2/g)^2 / (Gamma(1/g) Gamma(3/g))


def grey(rgb):
    """(3, H, W) or (1, 3, H, W) sRGB in [0, 1] (tensor or array) -> (H, W) float32 luma in [0, 1]:
    OpenCV's BGR2GRAY weights, quantised to the 8 bits of the pictures the regressor was trained on."""
    rgb = np.asarray(rgb.detach().cpu() if hasattr(rgb, "detach") else rgb, np.float32).reshape(3, *rgb.shape[-2:])
    return unit(np.clip(np.round((0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) * 255), 0, 255))


def unit(levels):
    """8-bit grey levels -> float32 in [0, 1] exactly as OpenCV's convertTo(CV_32F, 1/255) does (times the
    float32 of 1/255, not divided by 255): the features hang on which near-flat pixels come out exactly
    zero, and that one-ulp difference alone moved a score by 0.23."""
    return np.asarray(levels, np.float32) * np.float32(1 / 255)


def aggd(x):
    """AGGD fit of the samples of ``x`` (zeros count in the moments, as OpenCV's border zeros do):
    (shape gamma, left sigma, right sigma)."""
    x = x.astype(np.float64).ravel()
    negative, positive = x[x < 0], x[x > 0]
    if not len(negative) or not len(positive):
        return math.nan, math.nan, math.nan
    left, right = math.sqrt(np.mean(np.square(negative))), math.sqrt(np.mean(np.square(positive)))
    ratio = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(np.square(x))
    r_norm = r_hat * (ratio ** 3 + 1) * (ratio + 1) / (ratio ** 2 + 1) ** 2
    return float(_GRID[np.argmin(np.abs(_RATIO - r_norm))]), left, right


def mscn(image):
    """Mean-subtracted contrast-normalised coefficients: 7 x 7 Gaussian (sigma 7/6) local mean and
    deviation, deviation + 1/255 so flat regions do not divide by zero. Where rounding makes the
    float32 variance negative (flat patches) the coefficient is 0: OpenCV's square root makes it NaN
    there, which its fits skip but count, and the regressor was trained on those features."""
    mu = cv2.GaussianBlur(image, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(image * image, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu
    normalised = (image - mu) / (np.sqrt(np.maximum(var, 0)) + np.float32(1 / 255))
    return np.where(var < 0, np.float32(0), normalised)


def features(image):
    """(H, W) float32 grey in [0, 1] -> (36,) BRISQUE features; NaN where undefined (a flat image)."""
    out = []
    for scale in (1, 2):
        scaled = image if scale == 1 else cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2),
                                                     interpolation=cv2.INTER_CUBIC)
        m = mscn(scaled)
        shape, left, right = aggd(m)
        out += [shape, (left ** 2 + right ** 2) / 2]
        h, w = m.shape
        for dy, dx in SHIFTS:
            product = np.zeros_like(m)      # pixels without that neighbour stay 0, as in OpenCV
            y0, y1 = max(0, -dy), h - max(0, dy)
            product[y0:y1, :w - dx] = m[y0:y1, :w - dx] * m[y0 + dy:y1 + dy, dx:]
            shape, left, right = aggd(product)
            mean = (right - left) * math.exp(math.lgamma(2 / shape) - 0.5 * (math.lgamma(1 / shape) + math.lgamma(3 / shape)))
            out += [shape, mean, left ** 2, right ** 2]
    return np.array(out, np.float64)


class Brisque:
    """The LIVE regressor: features scaled to [-1, 1] by the training set's ranges, then
    sum_i alpha_i exp(-gamma |x - sv_i|^2) - rho (an epsilon-SVR), clamped to [0, 100]."""

    def __init__(self, support_vectors, alpha, rho, gamma, low, high):
        self.support_vectors, self.alpha = support_vectors.astype(np.float64), alpha.astype(np.float64)
        self.rho, self.gamma = float(rho), float(gamma)
        self.low, self.high = low.astype(np.float64), high.astype(np.float64)

    def predict(self, feature_vector):
        scaled = -1 + 2 * (feature_vector - self.low) / (self.high - self.low)
        distances = np.sum(np.square(self.support_vectors - scaled), axis=1)
        return float(np.clip(self.alpha @ np.exp(-self.gamma * distances) - self.rho, 0, 100))

    def score(self, rgb):
        """sRGB (3, H, W) in [0, 1], already at the size to judge -> BRISQUE, or None where it is
        undefined (a flat image has no contrast to describe)."""
        feature_vector = features(grey(rgb))
        return self.predict(feature_vector) if np.isfinite(feature_vector).all() else None


def load(directory=None):
    """The shipped LIVE model, hash-checked against backend/weights/manifest.json."""
    from ... import weights

    directory = directory or weights.WEIGHTS_DIR
    svm = cv2.ml.SVM_load(weights.verified_path(MODEL_FILE, directory))
    if svm.getType() != cv2.ml.SVM_EPS_SVR or svm.getKernelType() != cv2.ml.SVM_RBF:
        raise weights.WeightsError("%s is not an RBF epsilon-SVR" % MODEL_FILE)
    rho, alpha, index = svm.getDecisionFunction(0)
    storage = cv2.FileStorage(weights.verified_path(RANGE_FILE, directory), cv2.FILE_STORAGE_READ)
    ranges = storage.getNode("range").mat()     # (the node lives only as long as its storage)
    storage.release()
    return Brisque(svm.getSupportVectors()[index.ravel()], alpha.ravel(), rho, svm.getGamma(), ranges[0], ranges[1])
