"""Soak: 8 concurrent clients against a real daemon for a few minutes, mixed adjust / filters on 12-MP layers.

Not a test: a benchmark that shows the daemon stays up, answers every client, and gives its memory back.
It starts `semantic-enhance serve` as its own process (backend.spawn), measures each operation alone
first (the reference, same run), then lets N client processes loop over random operations until the
time is up. Prints per-operation p50/p95 latency (and p50 as a ratio to the operation alone), throughput,
every refusal by status code, and the daemon's resident memory before, at peak (VmHWM) and after.

    python -m training.bench.soak [--duration 120] [--clients 8] [--megapixels 12] [--stream] [--markdown]
"""

import argparse
import multiprocessing
import tempfile
import threading
import time

import numpy as np

from backend.spawn import spawn_daemon
from backend.styles import LOCAL as STYLES
STACKS = ({"filters": [{"name": "exposure", "values": [0.4]}, {"name": "contrast", "values": [0.3]}]},
          {"filters": [{"name": "saturation", "values": [0.5]}, {"name": "gamma", "values": [1.2]}]},
          {"filters": [{"name": "tone", "values": [1, 1.2, 1.3, 1.2, 1, 0.9, 0.9, 1]}]})


def layer(megapixels, seed):
    """A real photograph (scikit-image's astronaut) at the requested size, shifted per client."""
    import cv2
    from skimage import data

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.roll(image, 97 * seed, axis=1))


def operation(client, image, rng):
    """One random request: sa-adjust with a random style (1 in 3) or a random filter stack. Returns its name."""
    if rng.random() < 1 / 3:
        style = STYLES[rng.integers(len(STYLES))]
        result = client.adjust(image, style=style, model="sa-adjust")
        name = "adjust"
    else:
        result = client.filters(image, STACKS[rng.integers(len(STACKS))])
        name = "filters"
    assert result.image.shape == image.shape and result.image.dtype == image.dtype
    return name


def client_loop(index, address, token_file, shared_memory, megapixels, stop_at, results):
    from backend.client import BackendError, Client

    rng = np.random.default_rng(index)
    image = layer(megapixels, index)
    client = Client(address, token_file=token_file, shared_memory="auto" if shared_memory else False)
    records = []
    while time.time() < stop_at:
        started = time.perf_counter()
        try:
            name = operation(client, image, rng)
            records.append((name, time.perf_counter() - started, "OK"))
        except BackendError as error:
            records.append(("refused", time.perf_counter() - started, error.code))
            time.sleep(0.5)
    client.close()
    results.put(records)


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (default 120)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--stream", action="store_true", help="stream pixels over gRPC instead of shared memory")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    from backend.client import Client

    daemon = spawn_daemon(tempfile.mkdtemp(prefix="soak-"))
    process, address, token_file = daemon.process, daemon.address, daemon.token_file
    try:
        client = Client(address, token_file=token_file, shared_memory=False if args.stream else "auto")
        image = layer(args.megapixels, 0)
        alone = {}
        for name, call in (("adjust", lambda: client.adjust(image, style="local-xpro", model="sa-adjust")),
                           ("filters", lambda: client.filters(image, STACKS[0]))):
            call()  # warm: weights loaded, caches filled
            started = time.perf_counter()
            call()
            alone[name] = time.perf_counter() - started
        client.close()
        time.sleep(2.0)
        rss_before = rss_kib(process.pid)

        samples = []
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.5):
                samples.append(rss_kib(process.pid))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = multiprocessing.get_context("spawn").Queue()
        started = time.time()
        stop_at = started + args.duration
        workers = [multiprocessing.get_context("spawn").Process(
            target=client_loop, args=(i, address, token_file, not args.stream, args.megapixels, stop_at, results))
            for i in range(args.clients)]
        for worker in workers:
            worker.start()
        records = []
        for _ in workers:
            records.extend(results.get(timeout=args.duration + 600))
        for worker in workers:
            worker.join(60)
        elapsed = time.time() - started
        time.sleep(5.0)  # let the daemon settle: freed layers, finished jobs
        sampling.set()
        rss_after = rss_kib(process.pid)
        rss_peak = rss_kib(process.pid, "VmHWM")
        alive = process.poll() is None
    finally:
        daemon.stop(30)

    rows = []
    for name in ("adjust", "filters"):
        latencies = [seconds for op, seconds, code in records if op == name]
        p50 = percentile(latencies, 50)
        rows.append((name, len(latencies), p50, percentile(latencies, 95), p50 / alone[name], alone[name]))
    refusals = {}
    for op, _, code in records:
        if code != "OK":
            refusals[code] = refusals.get(code, 0) + 1
    done = sum(1 for _, _, code in records if code == "OK")
    mode = "streamed" if args.stream else "shared memory"
    header = ("operation", "done", "p50 s", "p95 s", "p50 / alone", "alone s")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| %s | %d | %.2f | %.2f | %.1fx | %.2f |" % row)
    else:
        print("%-8s %6s %8s %8s %12s %8s" % header)
        for row in rows:
            print("%-8s %6d %8.2f %8.2f %11.1fx %8.2f" % row)
    print()
    print("%d clients, %.0f s, %.1f-MP RGB u8 layers (%s): %d operations, %.2f per second; refusals: %s; "
          "daemon alive at the end: %s" % (args.clients, elapsed, args.megapixels, mode, done, done / elapsed,
                                           refusals or "none", alive))
    print("daemon RSS: before %.0f MiB, peak %.0f MiB (sampled %.0f MiB), after %.0f MiB"
          % (rss_before / 1024, rss_peak / 1024, max(samples or [0]) / 1024, rss_after / 1024))


if __name__ == "__main__":
    main()
