"""Transfer cost of the daemon: 24-megapixel layers round-tripped through `filters` by a real daemon.

Three ways to the daemon, timed in the same run: pixels streamed as gRPC chunks over loopback (what
every client can do); handed over in shared memory, copied into a new segment on each call (a client on
the daemon's machine; see backend/transport/shared_memory.py); and in shared memory the client keeps
(``Client.shared_array``: an editor reads its layer straight into it, so no call copies it). Reference: the same stack applied in-process (decode, apply,
encode: exactly the daemon's work), both on the whole layer and by the daemon's bands of rows; the
faster of the two is the reference. Transfer = round trip through the daemon - in-process time.
Targets (issue 2): transfer adds at most 25% to the in-process time, and moves >= 100 MP/s (megapixels
of the layer per second of transfer, upload and download together).

    python -m training.bench.transfer [--megapixels 24] [--repeat 7] [--markdown]
"""

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from backend.spawn import spawn_daemon

STACK = {"filters": [{"name": "exposure", "values": [0.3]}, {"name": "contrast", "values": [0.3]},
                     {"name": "saturation", "values": [0.5]}]}


def in_process(image):
    """The whole layer at once, as a script calling the imaging core would."""
    from backend.imaging import filters as bank, pixels

    layer = pixels.decode(image)
    rgb = bank.apply_stack_tiled(layer.rgb, bank.parse_stack(STACK))
    return pixels.encode(rgb, layer)


def in_process_bands(image):
    """The daemon's own way, in-process: bands of rows of STREAM_BAND_BYTES, decoded, filtered, encoded."""
    from backend.imaging import filters as bank, pixels
    from backend.transport.server import STREAM_BAND_BYTES

    stack = bank.parse_stack(STACK)
    out = np.empty_like(image)
    rows = max(1, STREAM_BAND_BYTES // (image.nbytes // image.shape[0]))
    for top in range(0, image.shape[0], rows):
        band = pixels.decode(image[top:top + rows])
        out[top:top + rows] = pixels.encode(bank.apply_stack_tiled(band.rgb, stack), band)
    return out


def best_of_interleaved(repeat, *fns):
    """Run the functions in turn ``repeat`` times (so both see the same machine state); best time of each."""
    times, results = [[] for _ in fns], [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [min(t) for t in times], results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)


    width = int(round((args.megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(args.megapixels * 1e6 / width))
    rng = np.random.default_rng(0)
    cases = [("RGBA u8", rng.integers(0, 256, (height, width, 4), dtype=np.uint8)),
             ("RGB u16", rng.integers(0, 65536, (height, width, 3), dtype=np.uint16))]
    with tempfile.TemporaryDirectory() as tmp:
        daemon = spawn_daemon(tmp)
        try:
            streamed = daemon.client(shared_memory=False)
            shared = daemon.client(shared_memory=True)
            for client in (streamed, shared):  # warm-up: imports, first allocations
                client.filters(np.zeros((8, 8, 3), np.uint8), STACK)
            rows, references = [], []
            for name, image in cases:
                kept = shared.shared_array(image.shape, image.dtype)  # as an editor reading its layer into it
                kept[...] = image
                (whole_time, bands_time, streamed_time, shared_time, kept_time), \
                    (local, local_bands, by_stream, by_segment, by_kept) = best_of_interleaved(
                        args.repeat, lambda: in_process(image), lambda: in_process_bands(image),
                        lambda: streamed.filters(image, STACK), lambda: shared.filters(image, STACK),
                        lambda: shared.filters(kept, STACK))
                shared.release(kept)
                assert np.array_equal(local_bands, local), "in-process by bands and whole differ"
                local_time = min(whole_time, bands_time)  # the stricter reference: the faster in-process way
                references.append((name, whole_time, bands_time))
                for path, result, remote_time in (("gRPC stream", by_stream, streamed_time),
                                                  ("shared memory", by_segment, shared_time),
                                                  ("shared memory, layer kept", by_kept, kept_time)):
                    assert np.array_equal(result.image, local), "daemon (%s) and in-process results differ" % path
                    transfer = remote_time - local_time
                    rows.append((name, path, "%dx%d" % (width, height), image.nbytes / 2**20, local_time,
                                 remote_time, transfer, transfer / local_time, height * width / 1e6 / transfer))
        finally:
            daemon.stop()
    header = ("layer", "path", "size", "MiB", "in-process s", "via daemon s", "transfer s", "transfer / in-process",
              "transfer MP/s")
    print("torch %s, %d threads, %s" % (torch.__version__, torch.get_num_threads(), os.uname().machine))
    for name, whole_time, bands_time in references:
        print("%s in-process: whole layer %.2f s, by bands %.2f s (the reference is the faster)"
              % (name, whole_time, bands_time))


    def rate(mp_s):  # a transfer at or below zero (the daemon as fast as in-process) has no meaningful rate
        return "%.0f" % mp_s if mp_s > 0 else "-"
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.0f%% | %s |"
                  % (r[:7] + (100 * r[7], rate(r[8]))))
    else:
        print("%-8s %-26s %-10s %6s %13s %13s %11s %22s %14s" % header)
        for r in rows:
            print("%-8s %-26s %-10s %6.0f %13.2f %13.2f %11.2f %21.0f%% %14s" % (r[:7] + (100 * r[7], rate(r[8]))))


if __name__ == "__main__":
    main()
