"""The gRPC daemon: receives streamed layers, queues jobs for the worker, streams results back.

Each RPC handler runs in its own thread: it receives the upload (validating as bytes arrive), submits
one job, relays the job's progress, then streams the result images and a summary. Errors become gRPC
status codes with a sentence; the daemon keeps serving whatever a client sends. A client on this
machine may instead hand over its pixels in shared memory (``shared_memory.py``); the work is the same.
"""

import json
import logging
import os
import queue
import signal
import socket
import stat
import threading
import time
import traceback
from concurrent import futures

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .. import __version__, jobs, models
from ..imaging import pixels
from . import auth, requests as decoding, schema, shared_memory, wire
from .channel import CHANNEL_OPTIONS, MESSAGE_LIMIT, is_loopback  # noqa: F401 (re-exported for old callers)

log = logging.getLogger("semantic_enhance.server")
# gRPC sets SO_REUSEPORT by default, which lets a second daemon bind the same port beside the first
SERVER_OPTIONS = CHANNEL_OPTIONS + [("grpc.so_reuseport", 0)]
WIRE_TRANSFERS = {pixels.PERCEPTUAL: schema.PERCEPTUAL, pixels.LINEAR: schema.LINEAR}
STREAM_BAND_BYTES = 8 << 20  # a streamed band: big enough that the worker's threads stay busy, small enough to overlap
# Handler threads: image streams and the token-free streams (health Watch, reflection) each have a cap
# below the pool's size, so ListModels and health checks always find a free thread.
IMAGE_STREAMS = 32
OPEN_STREAMS = 8
HANDLER_THREADS = IMAGE_STREAMS + OPEN_STREAMS + 8
MAX_PENDING_RPCS = 256          # beyond this gRPC answers RESOURCE_EXHAUSTED instead of queueing more
MIN_UPLOAD_RATE = 256 << 10     # bytes/s an upload must average (after a grace of the stall deadline)
BEHIND_SECONDS = 1.0            # how long the worker waits for a streamed band before handing itself back
MAX_STYLE_PAIRS = 1000          # pairs one LearnStyle call may announce (each is kept at the fitting size, <= 384 px)
MODEL_FLOAT_LIMIT = 8.0         # float samples a learned model takes: 3 stops over white (see check_float_range)
SWEEP_SECONDS = 10.0            # how often dead clients' shared-memory segments are looked for
DEFAULT_REQUEST_BYTES = 4 << 30  # one request's pixels and their decoded float copies, at most
STATUS = {name: getattr(grpc.StatusCode, name) for name in
          ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "NOT_FOUND", "PERMISSION_DENIED", "ALREADY_EXISTS",
           "UNAVAILABLE", "CANCELLED", "DATA_LOSS", "DEADLINE_EXCEEDED", "INTERNAL")}

# rpc -> (task kind, how the model is chosen: a setup field naming it, or None for the task's default)
ROUTES = {"Adjust": ("adjust", "model"), "Enhance": ("enhance", None), "Crop": ("crop", None),
          "Progressive": ("progressive", None), "ApplyFilters": ("filters", None), "Score": ("score", None)}


class Inbox:
    """The request stream, read by a thread of its own: a handler waits for the next message at most
    ``stall_seconds``, so a client that goes silent holds a handler thread no longer than that."""

    _END = object()

    def __init__(self, requests, stall_seconds):
        self.stall_seconds = stall_seconds
        self._items = queue.Queue(maxsize=4)  # a few chunks ahead; gRPC's flow control holds the rest
        self._closed = threading.Event()
        self._ended = False
        threading.Thread(target=self._read, args=(requests,), name="inbox", daemon=True).start()

    def _read(self, requests):
        try:
            for message in requests:
                if not self._put(message):
                    return
        except Exception as error:  # the call was cancelled, or a frame did not parse
            self._put(error)
            return
        self._put(self._END)

    def _put(self, item):
        while not self._closed.is_set():
            try:
                self._items.put(item, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def next(self):
        """The next message, or None when the stream has ended; WireError when it stalled."""
        if self._ended:
            return None
        try:
            item = self._items.get(timeout=self.stall_seconds)
        except queue.Empty:
            raise wire.WireError("DEADLINE_EXCEEDED", "the upload stalled: nothing arrived for %.0f s, so the "
                                 "daemon gave up on it" % self.stall_seconds) from None
        if item is self._END or isinstance(item, Exception):
            self._ended = True
            if item is not self._END:
                raise item
            return None
        return item

    def __iter__(self):
        while True:
            message = self.next()
            if message is None:
                return
            yield message

    def close(self):
        """The call has ended: whoever waits in ``next`` hears so at once (the reader thread then stops)."""
        self._closed.set()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._items.put_nowait(wire.WireError("CANCELLED", "the call ended before the upload did"))


class ByteBudget:
    """Bytes held for requests' pixels at once, across all clients: a request that would go past the
    budget is refused (RESOURCE_EXHAUSTED) before anything is allocated for it."""

    def __init__(self, per_request, total):
        self.per_request, self.total = per_request, total
        self.used = 0
        self._lock = threading.Lock()

    def take(self, count):
        if count > self.per_request:
            raise Refused("RESOURCE_EXHAUSTED", "the request needs about %.1f GiB of memory (pixels, mask and their "
                          "float copies) and this daemon takes at most %.1f GiB per request; send a smaller layer "
                          "or mask" % (count / 2**30, self.per_request / 2**30))
        with self._lock:
            if self.used + count > self.total:
                raise Refused("RESOURCE_EXHAUSTED", "the daemon holds %.1f GiB of other requests' pixels and this "
                              "one needs %.1f GiB more than its %.1f GiB allow; try again shortly"
                              % (self.used / 2**30, count / 2**30, self.total / 2**30))
            self.used += count

    def give_back(self, count):
        with self._lock:
            self.used -= count


def request_bytes(header, mask_header):
    """What a request costs in memory: its raw pixels and mask, plus the float planes the work makes of them."""
    pixels_count = header.width * header.height
    total = wire.byte_count(header.width, header.height, header.channels, header.sample_type) + pixels_count * 12
    if mask_header is not None:
        total += wire.byte_count(header.width, header.height, mask_header.channels, mask_header.sample_type)
        total += pixels_count * mask_header.channels * 4
    return total


def _limited(slots, what, behavior):
    """A streaming handler that takes one of ``slots`` for its lifetime, or refuses when none is free."""
    def run(request, context):
        if not slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the daemon is serving as many %s as it takes at "
                          "once; try again shortly" % what)
        try:
            yield from behavior(request, context)
        finally:
            slots.release()
    return run


def stream_limits():
    """The interceptor's ``wrap``: caps image streams and token-free streams (see HANDLER_THREADS)."""
    groups = {"image": (threading.BoundedSemaphore(IMAGE_STREAMS), "image requests"),
              "open": (threading.BoundedSemaphore(OPEN_STREAMS), "health watches and reflection streams")}

    def wrap(method, handler):
        if handler is None or not handler.response_streaming:
            return handler  # unary replies are quick and always answered
        slots, what = groups["image" if method.startswith("/" + schema.SERVICE + "/") else "open"]
        if handler.request_streaming:
            return handler._replace(stream_stream=_limited(slots, what, handler.stream_stream))
        return handler._replace(unary_stream=_limited(slots, what, handler.unary_stream))
    return wrap


def check_result(array):
    """A float result must be finite: a filter can take large finite values past float32's range."""
    array = np.asarray(array)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise Refused("INVALID_ARGUMENT", "the result would hold infinite values: the layer's float values are too "
                      "large for these filter settings; scale the layer down or use gentler settings")


def check_float_range(image, model):
    """Float layers may be scene-referred (values above 1). Pointwise filters take any finite value; a
    learned model fits colour transforms to what it sees, in float32: the local covariances lose their
    precision as values grow (a patch of 5000, or rows of 40 on a small layer, made the fit singular;
    20 still held everywhere probed), so beyond MODEL_FLOAT_LIMIT it is refused, before any work."""
    if image.dtype.kind != "f" or model.pointwise or not image.size:
        return
    peak = max(float(image.max()), -float(image.min()))  # no full-size temporary, unlike np.abs
    if peak > MODEL_FLOAT_LIMIT:
        raise Refused("INVALID_ARGUMENT", "the layer's float samples reach %g, and model '%s' takes float samples "
                      "within -%g..%g; scale the layer down first (or use the filters, which take any finite value)"
                      % (peak, model.id, MODEL_FLOAT_LIMIT, MODEL_FLOAT_LIMIT))


def pick_device(choice="auto"):
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but no CUDA device is available")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Service:
    """The SemanticEnhance RPCs, as plain methods (the generic handler below wires them to gRPC)."""

    def __init__(self, device="cpu", max_pixels=wire.DEFAULT_MAX_PIXELS, queue_capacity=8, local=True,
                 stall_seconds=wire.STALL_SECONDS, max_request_bytes=DEFAULT_REQUEST_BYTES):
        self.device = device
        self.max_pixels = max_pixels
        self.stall_seconds = stall_seconds
        self.budget = ByteBudget(max_request_bytes, 2 * max_request_bytes)
        self.queue = jobs.JobQueue(queue_capacity)
        # segments only from clients that must be on this machine: a loopback or Unix-socket daemon's
        self.shared_memory = local and shared_memory.available()

    # -- ListModels ------------------------------------------------------------------------------
    def ListModels(self, request, context):
        reply = schema.ListModelsReply(server_version=__version__, device=self.device, max_pixels=self.max_pixels,
                                       shared_memory=self.shared_memory)
        for model in models.all_models().values():
            info = reply.models.add(id=model.id, version=model.version, paper=model.paper, summary=model.summary,
                                    styles=list(model.styles), installed=model.installed(), device=self.device)
            for option in model.options:
                info.options.add(name=option.name, description=option.description,
                                 default_value=option.default, choices=list(option.choices))
            for style in model.style_info():
                info.style_info.add(name=style.name, title=style.title, summary=style.summary,
                                    presets=list(style.presets), selected_preset=style.selected,
                                    unselected_preset=style.unselected)
        return reply

    # -- streamed image RPCs ----------------------------------------------------------------------
    @staticmethod
    def _read_setup(inbox):
        first = inbox.next()
        if first is None or isinstance(first, wire.Chunk) or first.WhichOneof("part") != "setup":
            raise Refused("INVALID_ARGUMENT", "the first message of the stream must be the setup (with the image header)")
        return first.setup

    @staticmethod
    def _mask_header(setup):
        has_mask = "mask" in setup.DESCRIPTOR.fields_by_name and setup.HasField("mask") and setup.mask.channels
        return setup.mask if has_mask else None

    @staticmethod
    def _pixel_bytes(message):
        if isinstance(message, wire.Chunk):
            return message.data
        if message.WhichOneof("part") == "chunk":
            return message.chunk
        raise Refused("INVALID_ARGUMENT", "%s arrived in the middle of the pixel bytes: check the header's width, "
                      "height, channels and sample type" % {"image": "an image header"}.get(message.WhichOneof("part"),
                                                                                        "a second setup"))

    def _feed(self, inbox, receiver, until_full=False):
        """Feed the receiver every message of the upload: each must come within the stall deadline, and the
        whole upload at MIN_UPLOAD_RATE on average (so a drip of bytes cannot hold a thread for long).
        ``until_full``: stop once the receiver has its bytes (one image of several in a stream)."""
        started = time.monotonic()
        deadline = started + self.stall_seconds + receiver.expected / MIN_UPLOAD_RATE
        for message in inbox:
            receiver.feed(self._pixel_bytes(message))
            if until_full and receiver.filled == receiver.expected:
                return
            if receiver.filled < receiver.expected and time.monotonic() > deadline:
                raise wire.WireError("DEADLINE_EXCEEDED", "the upload is too slow: %d of %d bytes in %.0f s (the "
                                     "daemon needs at least %d KiB/s)" % (receiver.filled, receiver.expected,
                                                                         time.monotonic() - started,
                                                                         MIN_UPLOAD_RATE >> 10))

    def _receive(self, setup, inbox):
        """Read exactly the bytes the setup announced. Returns (image, mask or None)."""
        receiver = wire.Receiver(setup.image, self._mask_header(setup), self.max_pixels)
        self._feed(inbox, receiver)
        return receiver.finish()

    def _model_for(self, rpc, setup):
        kind, field = ROUTES[rpc]
        if field and getattr(setup, field):
            try:
                model = models.get(getattr(setup, field))
            except KeyError as error:
                raise Refused("INVALID_ARGUMENT", error.args[0])
            if kind not in model.tasks:
                raise Refused("INVALID_ARGUMENT", "model '%s' does not do %s; it does: %s"
                              % (model.id, kind, ", ".join(model.tasks)))
            return kind, model
        return kind, models.for_task(kind, getattr(setup, "style", ""))[0]

    @staticmethod
    def _request(kind, model, setup):
        """The setup as a typed request, checked by the model, before any pixel is received."""
        try:
            request = decoding.decode(kind, setup)
            model.check(request)
        except ValueError as error:
            raise Refused("INVALID_ARGUMENT", str(error))
        return request

    def _shared_pixels(self, setup):
        """The request's pixels when they are in the client's shared memory, else None (chunks follow)."""
        if not setup.image.HasField("shared_memory"):
            mask = self._mask_header(setup)
            if setup.image.HasField("result_shared_memory") or (mask is not None and mask.HasField("shared_memory")):
                raise Refused("INVALID_ARGUMENT", "a result or mask segment needs the layer in shared memory too; "
                              "a streamed layer streams its mask and gets its result streamed back")
            return None
        if not self.shared_memory:
            raise shared_memory.Unusable(
                "FAILED_PRECONDITION", "this daemon takes no pixels in shared memory: it listens on a network "
                "address (--allow-remote), where clients may be on other machines; stream the pixels as chunks")
        return shared_memory.SharedPixels(setup.image, self._mask_header(setup), self.max_pixels)

    def _buffered_work(self, request, model, setup, inbox, shared=None):
        """Receive the whole upload (or map the shared pixels), then queue the work on it."""
        request.image, request.mask = shared.finish() if shared is not None else self._receive(setup, inbox)
        check_float_range(request.image, model)  # before the job is queued

        def work(job):
            request.job = job
            model.ensure_loaded(self.device)
            try:
                return model.run(request, self.device)
            except models.RequestError as error:  # what only the pixels can tell
                raise Refused("INVALID_ARGUMENT", str(error))
        return work

    def _streamed_work(self, request, model, setup, inbox, shared=None):
        """A pointwise model without a mask: a thread receives the upload while the worker filters the
        bands that have arrived and sends their results back (upload, work and download overlap). With
        shared pixels every band is there at once, and result rows go into the client's result segment.

        Returns (work, source): ``work(start_row, wait)`` makes the job's function. With ``wait`` False the
        worker never waits for a band longer than BEHIND_SECONDS: it raises wire.UploadBehind, and the
        handler queues the rest once the upload is complete (a slow client never holds the worker)."""
        source = shared
        if source is None:
            source = wire.Receiver(setup.image, None, self.max_pixels)
            threading.Thread(target=self._pump, args=(inbox, source), name="upload", daemon=True).start()
        transfer = request.transfer
        row_bytes = wire.byte_count(setup.image.width, 1, setup.image.channels, setup.image.sample_type)
        # a long stack works longer on each band: smaller bands keep the time between cancel checks short
        band_bytes = STREAM_BAND_BYTES * min(1.0, 8.0 / max(1, len(request.filter_stack or ())))
        band_rows = max(1, int(band_bytes // row_bytes))

        def work_from(start, wait):
            def work(job):
                request.job = job
                model.ensure_loaded(self.device)

                def emit(rows):
                    check_result(rows)
                    if shared is not None and shared.result is not None:
                        shared.put_result_rows(rows)
                        return
                    for frame in wire.chunk_frames(rows, wire.REPLY_CHUNK_TAG):
                        job.send(frame)
                waiting = {} if wait or shared is not None else {"behind_after": BEHIND_SECONDS}
                bands = (pixels.decode(rows, transfer)
                         for rows in source.rows(band_rows, start=start, **waiting))
                return model.run_rows(request, bands, emit, self.device)
            return work
        return work_from, source

    def _pump(self, inbox, receiver):
        error = None
        try:
            self._feed(inbox, receiver)
        except Exception as caught:  # handed to the worker and the handler, which turn it into a status
            error = caught
        finally:
            receiver.end(error)

    def _submit(self, work, name):
        try:
            return self.queue.submit(work, name=name)
        except jobs.QueueFull as error:
            raise Refused("RESOURCE_EXHAUSTED", str(error))
        except jobs.ShuttingDown as error:
            raise Refused("UNAVAILABLE", str(error))

    @staticmethod
    def _relay(job, context):
        context.add_callback(job.cancel)
        for item in job.updates():
            if isinstance(item, tuple):
                yield schema.Reply(progress=schema.Progress(fraction=item[0], stage=item[1]))
            else:
                yield item

    def _stream(self, rpc, requests, context):
        inbox = Inbox(requests, self.stall_seconds)
        context.add_callback(inbox.close)
        setup = self._read_setup(inbox)
        kind, model = self._model_for(rpc, setup)  # refuse unknown or missing models before the upload
        if not model.installed():
            try:
                model.ensure_loaded(self.device)
            except models.ModelNotInstalled as error:
                raise Refused("FAILED_PRECONDITION", str(error))
        wire.check_image_header(setup.image, self.max_pixels)
        mask_header = wire.check_mask_header(setup.image, self._mask_header(setup))
        request = self._request(kind, model, setup)  # an unknown style, option or filter: before the upload
        cost = request_bytes(setup.image, mask_header)
        self.budget.take(cost)  # before anything is allocated for the request
        try:
            yield from self._serve(rpc, request, model, setup, inbox, context)
        finally:
            self.budget.give_back(cost)

    def _serve(self, rpc, request, model, setup, inbox, context):
        shared = self._shared_pixels(setup)  # opened before the first reply: the client may unlink them then
        result_segment = shared is not None and shared.result is not None
        streamed = model.pointwise and self._mask_header(setup) is None
        name = "%s/%s" % (rpc, model.id)
        if streamed:
            work_from, source = self._streamed_work(request, model, setup, inbox, shared)
            if shared is None:  # the worker starts on pixels that are here, not on a promise of them
                source.wait_for(min(source.expected, 1 << 20), self.stall_seconds)
            job = self._submit(work_from(0, wait=False), name)
        else:
            job = self._submit(self._buffered_work(request, model, setup, inbox, shared), name)
        if shared is not None:  # let go of the layer's segment only once the reply is out: the client has
            holder = [shared]   # unlinked it, so that frees its pages, which takes a while and nobody waits for
            context.add_callback(holder.clear)
        if streamed and not result_segment:  # a pointwise result has the layer's format; its rows follow as made
            result = schema.ImageHeader()
            result.CopyFrom(setup.image)
            result.role = "result"
            yield schema.Reply(image=result)
        yield from self._relay(job, context)
        if isinstance(job.error, wire.UploadBehind):  # the upload is slower than the work: finish it first,
            source.wait_for(source.expected, self.stall_seconds)  # then the rest of the rows, queued anew
            job = self._submit(work_from(job.error.row, wait=True), name)
            yield from self._relay(job, context)
        if isinstance(job.error, jobs.Cancelled):
            raise Refused("CANCELLED", "the job was cancelled")
        if job.error is not None:
            if not isinstance(job.error, (Refused, wire.WireError)):  # a bug: the log shows where it happened
                log.error("%s failed in the worker:\n%s", rpc, job.trace.rstrip())
            raise job.error
        if streamed and shared is None:  # every row is back; the upload must also have ended, with nothing extra
            source.wait_for(source.expected, self.stall_seconds)
            if not source.wait_ended(self.stall_seconds):
                raise wire.WireError("DEADLINE_EXCEEDED", "the upload did not end after the last pixel byte")
            if source.error is not None:
                raise source.error
        if streamed and result_segment:  # the rows are in the client's segment now
            yield schema.Reply(image=shared.result_header(setup.image))
        outcome = job.result
        for output in outcome.images:
            check_result(output.pixels)
            transfer = WIRE_TRANSFERS[output.transfer]
            if result_segment and output.role == "result" and shared.put_result(output.pixels):
                yield schema.Reply(image=shared.result_header(wire.header_for(output.pixels, transfer, "result")))
            else:
                yield from wire.image_events(output.pixels, transfer, output.role)
        yield schema.Reply(summary=self._summary(model, outcome))

    # -- LearnStyle -------------------------------------------------------------------------------
    def _learn_style(self, requests, context):
        """Receive the pairs (each image brought to the fitting size as it arrives, so a call holds a few small
        copies, not the photos), then learn as a job: Progress while it fits, CANCELLED when the client goes,
        and the style written (and so served) only at the very end."""
        from ..models.fcn_stylize import store

        inbox = Inbox(requests, self.stall_seconds)
        context.add_callback(inbox.close)
        first = inbox.next()
        if first is None or isinstance(first, wire.Chunk) or first.WhichOneof("part") != "setup":
            raise Refused("INVALID_ARGUMENT", "the first message of a LearnStyle stream must be the setup (name and "
                          "pair count)")
        setup = first.setup
        try:
            store.check_new_name(setup.name, setup.replace)
        except store.StyleExists as error:
            raise Refused("ALREADY_EXISTS", str(error))
        except store.StyleFileError as error:
            raise Refused("INVALID_ARGUMENT", str(error))
        from training.fcn_stylize import learn, teach  # the learner (scipy) only loads when a style is learnt

        options = dict(setup.options)
        try:
            learn.parse_options(options)  # before any pixel: an unknown option or value is refused at once
        except learn.StyleError as error:
            raise Refused("INVALID_ARGUMENT", str(error))

        if not learn.MIN_PAIRS <= setup.pair_count <= MAX_STYLE_PAIRS:
            raise Refused("INVALID_ARGUMENT", "a style needs at least %d before/after pairs (and this daemon takes at "
                          "most %d in one call); the setup announced %d" % (learn.MIN_PAIRS, MAX_STYLE_PAIRS,
                                                                           setup.pair_count))
        pairs = []
        for index in range(setup.pair_count):
            held = []  # the pair's budget is given back once both images are down to the fitting size
            try:
                (before, name), (after, _) = (self._pair_image(inbox, index, role, held) for role in ("before", "after"))
                name = name or "pair-%d" % (index + 1)
                pairs.append((name,) + learn.prepare(name, before, after))
            except learn.StyleError as error:
                raise Refused("INVALID_ARGUMENT", str(error))
            finally:
                before = after = None
                for cost in held:
                    self.budget.give_back(cost)
            yield schema.Reply(progress=schema.Progress(fraction=0.2 * (index + 1) / setup.pair_count,
                                                        stage="receiving pairs"))
        if inbox.next() is not None:
            raise Refused("INVALID_ARGUMENT", "more messages followed the %d pairs the setup announced"
                          % setup.pair_count)

        def work(job):
            def progress(fraction, stage):
                job.progress(0.2 + 0.8 * fraction, stage)
            path, report, seconds = teach.teach(setup.name, pairs, replace=setup.replace, on_progress=progress,
                                                before_saving=lambda: job.progress(1.0, "saving"), options=options)
            return path, report, seconds
        job = self._submit(work, "LearnStyle/fcn-stylize")
        yield from self._relay(job, context)
        if isinstance(job.error, jobs.Cancelled):
            raise Refused("CANCELLED", "the job was cancelled; no style was written")
        if isinstance(job.error, store.StyleExists):  # another call took the name meanwhile
            raise Refused("ALREADY_EXISTS", str(job.error))
        if job.error is not None:
            log.error("LearnStyle failed in the worker:\n%s", job.trace.rstrip())
            raise job.error
        path, report, seconds = job.result
        model = models.get("fcn-stylize")
        style = next(s for s in model.style_info() if s.name == setup.name)
        summary = {"style": setup.name, "pairs": report["pairs"], "training_ratio": report["training"]["ratio"],
                   "held_out_ratio": report["held_out"]["ratio"], "folds": report["folds"],
                   "learn_seconds": round(seconds, 2), "path": path, "options": report["options"]}
        yield schema.Reply(summary=schema.Summary(
            model=model.id, model_version=model.version, parameters_json=json.dumps(summary, sort_keys=True),
            learnt_style=schema.StyleInfo(name=style.name, title=style.title, summary=style.summary)))

    def _pair_image(self, inbox, index, role, held):
        """One image of a LearnStyle stream: its header (role "before" or "after", optionally "/NAME"), then
        its bytes. Returns the (H, W, C) pixels as they came (sRGB-encoded ones) or as float32 sRGB-encoded
        (linear ones), and the pair's name; the budget it takes is appended to ``held``."""
        message = inbox.next()
        what = "the %s image of pair %d" % (role, index + 1)
        if message is None:
            raise Refused("INVALID_ARGUMENT", "the stream ended before %s (the setup announced %d pairs)"
                          % (what, index + 1) if role == "before" else "the stream ended before %s" % what)
        if isinstance(message, wire.Chunk) or message.WhichOneof("part") != "image":
            raise Refused("INVALID_ARGUMENT", "%s must start with its image header, not with %s"
                          % (what, "pixel bytes" if isinstance(message, wire.Chunk) else "a " + message.WhichOneof("part")))
        header = message.image
        given, _, name = header.role.partition("/")
        if given and given != role:
            raise Refused("INVALID_ARGUMENT", "%s came with role %r: each pair is its before image, then its after "
                          "image" % (what, header.role))
        wire.check_image_header(header, self.max_pixels, what)
        cost = request_bytes(header, None)  # the bytes, and the float copy the fitting size is made from
        self.budget.take(cost)
        held.append(cost)
        receiver = wire.Receiver(header, None, self.max_pixels)
        self._feed(inbox, receiver, until_full=True)
        image, _ = receiver.finish()
        if decoding.TRANSFERS.get(header.transfer) == pixels.LINEAR:  # styles are learnt on sRGB-encoded values
            image = np.ascontiguousarray(pixels.decode(image, pixels.LINEAR).rgb.permute(1, 2, 0).numpy())
        return image, name

    @staticmethod
    def _summary(model, outcome):
        from google.protobuf import json_format

        summary = schema.Summary(model=model.id, model_version=model.version, map_names=outcome.map_names,
                                 parameters_json=json.dumps(outcome.parameters, sort_keys=True))
        if outcome.filter_stack:
            json_format.ParseDict(outcome.filter_stack, summary.filter_stack, ignore_unknown_fields=True)
        for step in outcome.steps:
            json_format.ParseDict(step, summary.steps.add(), ignore_unknown_fields=True)
        for crop in outcome.crops:
            summary.crops.add(**crop)
        for score in outcome.scores:
            summary.scores.add(**score)
        return summary

    def handler(self, rpc):
        def serve(requests, context):
            try:
                yield from (self._learn_style(requests, context) if rpc == "LearnStyle"
                            else self._stream(rpc, requests, context))
            except (Refused, wire.WireError) as error:
                if isinstance(error, shared_memory.Unusable):  # an "auto" client then streams instead
                    context.set_trailing_metadata(((shared_memory.UNUSABLE_KEY, "unusable"),))
                traceback.clear_frames(error.__traceback__)  # let go of the request's pixels (see Job._run)
                context.abort(STATUS[error.code], str(error))
            except grpc.RpcError:
                raise
            except Exception as error:  # a bug: say so, keep serving
                traceback.clear_frames(error.__traceback__)  # the log needs the lines, not the locals
                if not context.is_active():
                    return
                log.exception("%s failed", rpc)
                context.abort(grpc.StatusCode.INTERNAL, "the daemon failed on this request: %s: %s"
                              % (type(error).__name__, error))
        return serve


def _generic_handler(service):
    handlers = {}
    for rpc, (request_class, reply_class, kind) in schema.RPCS.items():
        if kind == "unary":
            handlers[rpc] = grpc.unary_unary_rpc_method_handler(
                getattr(service, rpc), request_class.FromString, reply_class.SerializeToString)
        else:
            handlers[rpc] = grpc.stream_stream_rpc_method_handler(
                service.handler(rpc), wire.frame_decoder(request_class, wire.REQUEST_CHUNK_TAG), wire.serialize)
    return grpc.method_handlers_generic_handler(schema.SERVICE, handlers)


def claim_unix_path(path):
    """Make way for a Unix socket at ``path``: only a stale socket of this user's (nobody listening) is
    removed; anything else there (a file, a directory, another daemon's live socket) is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError("refusing to listen on %s: something that is not a socket is there, and the daemon never "
                      "deletes it; choose another path" % path)
    if info.st_uid != os.geteuid():
        raise OSError("refusing to listen on %s: the socket there belongs to user %d, not to this one"
                      % (path, info.st_uid))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:  # nobody listens: a daemon that was killed left it behind
        os.unlink(path)
        return
    except OSError as error:
        raise OSError("refusing to listen on %s: cannot tell whether another daemon listens there (%s)"
                      % (path, error.strerror or error))
    finally:
        probe.close()
    raise OSError("refusing to listen on %s: another daemon is listening there; stop it first or choose another "
                  "path" % path)


class Daemon:
    """The server, its service and its shutdown, in one object (tests start it in-process too).

    A non-loopback ``host`` needs ``allow_remote`` and TLS (``tls_cert``/``tls_key``, PEM files): the
    bearer token must not cross a network in clear text."""

    def __init__(self, host="127.0.0.1", port=auth.DEFAULT_PORT, unix=None, token=None, device="cpu",
                 max_pixels=wire.DEFAULT_MAX_PIXELS, allow_remote=False, queue_capacity=8, tls_cert=None,
                 tls_key=None, stall_seconds=wire.STALL_SECONDS, max_request_bytes=DEFAULT_REQUEST_BYTES,
                 sweep_seconds=SWEEP_SECONDS):
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("TLS needs both a certificate and its key (--tls-cert and --tls-key)")
        remote = unix is None and not is_loopback(host)
        if remote and not allow_remote:
            raise ValueError("refusing to listen on %s: that is not a loopback address and the daemon would be "
                             "reachable from other machines; pass --allow-remote (with --tls-cert and --tls-key) "
                             "if you really mean it" % host)
        if remote and not tls_cert:
            raise ValueError("refusing to listen on %s without TLS: the token would cross the network in clear "
                             "text; give --tls-cert and --tls-key" % host)
        credentials = None
        if tls_cert:
            try:
                with open(tls_cert, "rb") as cert, open(tls_key, "rb") as key:
                    credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
            except OSError as error:
                raise ValueError("cannot read the TLS certificate or key: %s: %s" % (error.filename, error.strerror))
        self.service = Service(device, max_pixels, queue_capacity, local=not remote, stall_seconds=stall_seconds,
                               max_request_bytes=max_request_bytes)
        kinds = {schema.method_path(rpc): kind for rpc, (_, _, kind) in schema.RPCS.items()}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="rpc"),
                                  interceptors=[auth.TokenInterceptor(token, kinds, wrap=stream_limits())],
                                  options=SERVER_OPTIONS, maximum_concurrent_rpcs=MAX_PENDING_RPCS)
        self.server.add_generic_rpc_handlers((_generic_handler(self.service),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((schema.SERVICE, reflection.SERVICE_NAME, health.SERVICE_NAME),
                                            self.server, pool=schema.POOL)
        self._socket_identity = None
        if unix:
            claim_unix_path(unix)
            # gRPC unlinks whatever socket is at its path when it stops, whoever's it is by then: it binds a
            # private name instead, which ``start`` renames to ``unix`` (and ``stop`` removes only if still ours)
            self._bound_path = os.path.join(os.path.dirname(os.path.abspath(unix)),
                                            ".%s.%d.binding" % (os.path.basename(unix), os.getpid()))
            old_umask = os.umask(0o177)  # the socket file is created 0600: only this user may connect
            try:
                self._bind("unix:" + self._bound_path, credentials)
            finally:
                os.umask(old_umask)
            self.address = "unix:" + unix
        else:
            bound = self._bind("%s:%d" % (host, port), credentials)
            self.address = "%s:%d" % (host, bound)
        self.tls = credentials is not None
        self.unix = unix
        self._stopped = threading.Event()
        self.sweep_seconds = sweep_seconds

    def _bind(self, address, credentials):
        try:
            if credentials is not None:
                bound = self.server.add_secure_port(address, credentials)
            else:
                bound = self.server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise OSError("cannot listen on %s: the address is in use (is another daemon running there?) or not "
                          "this machine's" % address)
        return bound

    def start(self):
        self.server.start()
        if self.unix:
            os.chmod(self._bound_path, 0o600)
            claim_unix_path(self.unix)  # again: another daemon may have started there meanwhile
            info = os.lstat(self._bound_path)
            os.rename(self._bound_path, self.unix)
            self._socket_identity = (info.st_dev, info.st_ino)
        if self.service.shared_memory:  # segments of clients killed before they could unlink them
            threading.Thread(target=self._sweep, name="sweeper", daemon=True).start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set(schema.SERVICE, health_pb2.HealthCheckResponse.SERVING)
        return self

    def _sweep(self):
        while True:
            swept = shared_memory.sweep_dead_segments()
            if swept:
                log.info("removed %d shared-memory segment(s) of clients that died: %s", len(swept), ", ".join(swept))
            if self._stopped.wait(self.sweep_seconds):
                return

    def stop(self, grace=5.0):
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.service.queue.closed.set()
        self.server.stop(grace).wait()
        self.service.queue.close(wait=True, timeout=grace)
        if self.unix and self._socket_identity is not None:  # only our own socket, not one that replaced it
            try:
                info = os.lstat(self.unix)
                if (info.st_dev, info.st_ino) == self._socket_identity:
                    os.unlink(self.unix)
            except FileNotFoundError:
                pass

    def serve_forever(self):
        """Block until SIGTERM or SIGINT, then shut down cleanly."""
        done = threading.Event()

        def on_signal(signum, frame):
            log.info("signal %d: shutting down", signum)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not done.wait(1.0):
            pass
        self.stop()
