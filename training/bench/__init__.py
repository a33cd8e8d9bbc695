"""Benchmarks: scripts, not tests. Each prints a table and times things as ratios against a reference
measured in the same run, so the numbers mean the same on a laptop and on CI."""


def photo_at(megapixels):
    """A real photograph (scikit-image's astronaut), resized to the requested size (3:2; 24 MP: 6000 x 4000)."""
    import cv2
    from skimage import data

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)


def timed(stages, name, fn):
    """``fn()``, its seconds added to ``stages[name]``; returns what it returned."""
    import time

    start = time.perf_counter()
    result = fn()
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - start
    return result


def best_seconds(call, repeat=1):
    """(the fastest of ``repeat`` runs of ``call()`` in seconds, the last run's result): a daemon round trip."""
    import time

    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return min(times), result


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
