"""Benchmarks: scripts, not tests. Each prints a table and times things as ratios against a reference
measured in the same run, so the numbers mean the same on a laptop and on CI."""


def photo_at(megapixels):
    """A real photograph (scikit-image's astronaut), resized to the requested size (3:2; 24 MP: 6000 x 4000)."""
    import cv2
    from skimage import data

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)


def lab_seconds(image, repeat=1):
    """The reference every benchmark divides by: OpenCV's RGB -> Lab conversion of ``image`` (best of ``repeat``)."""
    import time

    import cv2

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
        times.append(time.perf_counter() - start)
    return min(times)
