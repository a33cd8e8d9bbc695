"""Jobs: a bounded queue in front of one worker thread that owns the compute device.

gRPC handler threads receive and send bytes concurrently; the heavy work runs one job at a time on the
worker (one model on one GPU or on all CPU cores at once is faster than several fighting over them).
A job reports progress through ``job.progress(...)``, which is also where it learns that its client
went away: it then raises ``Cancelled`` and the worker moves on, freeing the device. Long loops that
report no progress (a filter stack on a band) call ``checkpoint()`` between steps for the same effect.
"""

import contextvars
import queue
import threading
import time
import traceback


class Cancelled(Exception):
    pass


class QueueFull(Exception):
    pass


class ShuttingDown(Exception):
    pass


_DONE = object()
# the job the running code works for, for ``checkpoint``: a context variable, so the band threads a job
# hands work to (imaging.threads.run copies the caller's context) stop on a cancel too
_current = contextvars.ContextVar("semantic_enhance_job", default=None)


def checkpoint():
    """Stop here (raise Cancelled) if the job this code runs for was cancelled; a no-op elsewhere."""
    job = _current.get()
    if job is not None and job.cancelled.is_set():
        raise Cancelled()


class Job:
    def __init__(self, work, name=""):
        self.work = work
        self.name = name
        self.events = queue.Queue()
        self.result = None
        self.error = None
        self.trace = ""  # the worker's traceback of ``error``, for the log
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.started_at = None

    def cancel(self):
        self.cancelled.set()

    def progress(self, fraction, stage):
        """Report progress (0..1) and stop here if the client has gone."""
        if self.cancelled.is_set():
            raise Cancelled()
        self.events.put((float(fraction), stage))

    def send(self, item):
        """Hand a ready reply (e.g. a chunk frame of a result streamed while it is made) to the client's thread."""
        self.events.put(item)

    def updates(self):
        """Yield (fraction, stage) tuples and sent items until the job is finished (in the client's handler thread)."""
        while True:
            item = self.events.get()
            if item is _DONE:
                return
            yield item

    def _run(self):
        self.started_at = time.monotonic()
        token = _current.set(self)
        try:
            if self.cancelled.is_set():
                raise Cancelled()
            self.result = self.work(self)
        except BaseException as error:  # handed to the client's thread, which turns it into a status
            # the worker's frames are kept as text only: as objects they would hold the request's pixels (and
            # a client's shared memory) in a reference cycle with this job until some later garbage collection
            self.trace = traceback.format_exc()
            self.error = error.with_traceback(None)
        finally:
            _current.reset(token)
            self.work = None  # what it held (a layer, a client's shared memory) goes now, not at a later GC
            self.finished.set()
            self.events.put(_DONE)


class JobQueue:
    def __init__(self, capacity=8):
        self.pending = queue.Queue(maxsize=capacity)
        self.capacity = capacity
        self.closed = threading.Event()
        self.current = None
        self.worker = threading.Thread(target=self._loop, name="semantic-enhance-worker", daemon=True)
        self.worker.start()

    def submit(self, work, name=""):
        if self.closed.is_set():
            raise ShuttingDown("the daemon is shutting down")
        job = Job(work, name)
        try:
            self.pending.put_nowait(job)
        except queue.Full:
            raise QueueFull("the daemon's queue is full (%d jobs waiting); try again shortly" % self.capacity)
        job.events.put((0.0, "queued"))
        return job

    def _loop(self):
        while True:
            job = self.pending.get()
            if job is None:
                return
            self.current = job
            job._run()
            self.current = None

    def close(self, wait=True, timeout=30.0):
        """Refuse new jobs, cancel the queued ones, let the running one finish."""
        self.closed.set()
        while True:
            try:
                job = self.pending.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
                job._run()
        self.pending.put(None)
        if wait:
            self.worker.join(timeout)
