"""Band-parallel CPU work: a small pool of threads whose torch operations each run on one thread.

torch splits every operation over its own (OpenMP) threads. A banded pass over a 24-MP layer is thousands of
small operations (a few rows, tens of microseconds each), and for those the fork and join of every one cost
what the second core gains: the carry's full-size pass took as long on two threads as on one (0.088 s,
docs/learn-style.md). Handing whole bands to threads that run torch single-threaded scales instead (0.066 s
on two cores, as fast as OpenCV's own Lab conversion); torch and OpenCV release the GIL in their kernels.

    >>> out = [0] * 4
    >>> run(lambda i: out.__setitem__(i, i * i), 4)
    >>> out
    [0, 1, 4, 9]
"""

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

_pool = None
_lock = threading.Lock()
_inside = threading.local()  # set in the pool's threads: a job that runs bands itself runs them in order


def _one_torch_thread(started):
    _inside.pool = True
    torch.get_num_threads()   # torch sets a thread's OpenMP count once, lazily: let it happen now ...
    torch.set_num_threads(1)  # ... then this thread's own count is 1 (the process-wide default too, until restored)
    started.wait()


def _workers():
    """The pool for torch's thread count (None for one thread). Its threads are started together and then
    the process-wide default is set back: torch, MKL and new threads read that one, each thread's own
    OpenMP count stays what it was set to."""
    global _pool
    count = torch.get_num_threads()
    if count < 2:
        return None
    with _lock:
        if _pool is None or _pool._max_workers != count:
            started = threading.Barrier(count)
            pool = ThreadPoolExecutor(count, thread_name_prefix="bands")
            for done in [pool.submit(_one_torch_thread, started) for _ in range(count)]:
                done.result()
            torch.set_num_threads(count)
            _pool = pool
    return _pool


def run(job, count, on_done=None, parallel=True):
    """``job(i)`` for i in range(count), spread over torch's number of threads (in order on one, or without
    ``parallel``: work on a GPU is queued by one thread). The jobs must write disjoint outputs. ``on_done(i)`` is called here, in order, after job i; if it raises (a cancel),
    the jobs not yet started are dropped and the running ones finish before it propagates."""
    pool = _workers() if parallel and not getattr(_inside, "pool", False) else None
    if pool is None:
        for i in range(count):
            job(i)
            if on_done:
                on_done(i)
        return
    # each job in a copy of the caller's context: what the caller's code knows (the job it works for, so
    # jobs.checkpoint stops on a cancel) holds in the band threads too
    futures = [pool.submit(contextvars.copy_context().run, job, i) for i in range(count)]
    try:
        for i, done in enumerate(futures):
            done.result()
            if on_done:
                on_done(i)
    except BaseException:
        for later in futures:
            later.cancel()
        for later in futures:
            if not later.cancelled():
                later.exception()
        raise
