"""The gRPC daemon: receives streamed layers, queues jobs for the worker, streams results back.

Each RPC handler runs in its own thread: it receives the upload (validating as bytes arrive), submits
one job, relays the job's progress, then streams the result images and a summary. Errors become gRPC
status codes with a sentence; the daemon keeps serving whatever a client sends. A client on this
machine may instead hand over its pixels in shared memory (``shared_memory.py``); the work is the same.
"""

import ipaddress
import json
import logging
import os
import signal
import socket
import threading
import traceback
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .. import __version__, jobs, models
from ..imaging import pixels
from . import auth, requests as decoding, schema, shared_memory, wire

log = logging.getLogger("semantic_enhance.server")
MESSAGE_LIMIT = 16 << 20
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MESSAGE_LIMIT),
                   ("grpc.max_send_message_length", MESSAGE_LIMIT)]
WIRE_TRANSFERS = {pixels.PERCEPTUAL: schema.PERCEPTUAL, pixels.LINEAR: schema.LINEAR}
STREAM_BAND_BYTES = 8 << 20  # a streamed band: big enough that the worker's threads stay busy, small enough to overlap
STATUS = {name: getattr(grpc.StatusCode, name) for name in
          ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "NOT_FOUND", "PERMISSION_DENIED",
           "UNAVAILABLE", "CANCELLED", "DATA_LOSS", "DEADLINE_EXCEEDED", "INTERNAL")}

# rpc -> (task kind, how the model is chosen: a setup field naming it, or None for the task's default)
ROUTES = {"Adjust": ("adjust", "model"), "Enhance": ("enhance", None), "Crop": ("crop", None),
          "Progressive": ("progressive", None), "ApplyFilters": ("filters", None), "Score": ("score", None)}


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

    def __init__(self, device="cpu", max_pixels=wire.DEFAULT_MAX_PIXELS, queue_capacity=8, local=True):
        self.device = device
        self.max_pixels = max_pixels
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
    def _read_setup(requests):
        first = next(requests, None)
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
        raise Refused("INVALID_ARGUMENT", "a second setup arrived in the middle of the pixel bytes")

    def _receive(self, setup, requests):
        """Read exactly the bytes the setup announced. Returns (image, mask or None)."""
        receiver = wire.Receiver(setup.image, self._mask_header(setup), self.max_pixels)
        for message in requests:
            receiver.feed(self._pixel_bytes(message))
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
        return kind, models.for_task(kind)[0]

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

    def _buffered_work(self, request, model, setup, requests, shared=None):
        """Receive the whole upload (or map the shared pixels), then queue the work on it."""
        request.image, request.mask = shared.finish() if shared is not None else self._receive(setup, requests)

        def work(job):
            request.job = job
            model.ensure_loaded(self.device)
            try:
                return model.run(request, self.device)
            except ValueError as error:  # what only the pixels can tell (a mask of the wrong size)
                raise Refused("INVALID_ARGUMENT", str(error))
        return work

    def _streamed_work(self, request, model, setup, requests, shared=None):
        """A pointwise model without a mask: a thread receives the upload while the worker filters the
        bands that have arrived and sends their results back (upload, work and download overlap). With
        shared pixels every band is there at once, and result rows go into the client's result segment."""
        upload, source = None, shared
        if source is None:
            source = wire.Receiver(setup.image, None, self.max_pixels)
            upload = threading.Thread(target=self._pump, args=(requests, source), name="upload", daemon=True)
            upload.start()
        transfer = request.transfer
        row_bytes = wire.byte_count(setup.image.width, 1, setup.image.channels, setup.image.sample_type)
        band_rows = max(1, STREAM_BAND_BYTES // row_bytes)

        def work(job):
            request.job = job
            model.ensure_loaded(self.device)

            def emit(rows):
                if shared is not None and shared.result is not None:
                    shared.put_result_rows(rows)
                    return
                for frame in wire.chunk_frames(rows, wire.REPLY_CHUNK_TAG):
                    job.send(frame)
            bands = (pixels.decode(rows, transfer) for rows in source.rows(band_rows))
            return model.run_rows(request, bands, emit, self.device)
        return work, upload, source

    def _pump(self, requests, receiver):
        error = None
        try:
            for message in requests:
                receiver.feed(self._pixel_bytes(message))
        except Exception as caught:  # handed to the worker and the handler, which turn it into a status
            error = caught
        finally:
            receiver.end(error)

    def _stream(self, rpc, requests, context):
        setup = self._read_setup(requests)
        kind, model = self._model_for(rpc, setup)  # refuse unknown or missing models before the upload
        if not model.installed():
            try:
                model.ensure_loaded(self.device)
            except models.ModelNotInstalled as error:
                raise Refused("FAILED_PRECONDITION", str(error))
        wire.check_image_header(setup.image, self.max_pixels)
        request = self._request(kind, model, setup)
        shared = self._shared_pixels(setup)  # opened before the first reply: the client may unlink them then
        result_segment = shared is not None and shared.result is not None
        streamed = model.pointwise and self._mask_header(setup) is None
        upload = None
        if streamed:
            work, upload, receiver = self._streamed_work(request, model, setup, requests, shared)
        else:
            work = self._buffered_work(request, model, setup, requests, shared)
        try:
            job = self.queue.submit(work, name="%s/%s" % (rpc, model.id))
        except jobs.QueueFull as error:
            raise Refused("RESOURCE_EXHAUSTED", str(error))
        except jobs.ShuttingDown as error:
            raise Refused("UNAVAILABLE", str(error))
        context.add_callback(job.cancel)
        if shared is not None:  # let go of the layer's segment only once the reply is out: the client has
            holder = [shared]   # unlinked it, so that frees its pages, which takes a while and nobody waits for
            context.add_callback(holder.clear)
        if streamed and not result_segment:  # a pointwise result has the layer's format; its rows follow as made
            result = schema.ImageHeader()
            result.CopyFrom(setup.image)
            result.role = "result"
            yield schema.Reply(image=result)
        for item in job.updates():
            if isinstance(item, tuple):
                yield schema.Reply(progress=schema.Progress(fraction=item[0], stage=item[1]))
            else:
                yield item
        if isinstance(job.error, jobs.Cancelled):
            raise Refused("CANCELLED", "the job was cancelled")
        if job.error is not None:
            if not isinstance(job.error, (Refused, wire.WireError)):  # a bug: the log shows where it happened
                log.error("%s failed in the worker:\n%s", rpc, job.trace.rstrip())
            raise job.error
        if upload is not None:  # every row is back; the upload must also have ended, with nothing extra
            upload.join(wire.STALL_SECONDS)
            if upload.is_alive():
                raise wire.WireError("DEADLINE_EXCEEDED", "the upload did not end after the last pixel byte")
            if receiver.error is not None:
                raise receiver.error
        if streamed and result_segment:  # the rows are in the client's segment now
            yield schema.Reply(image=shared.result_header(setup.image))
        outcome = job.result
        for output in outcome.images:
            transfer = WIRE_TRANSFERS[output.transfer]
            if result_segment and output.role == "result" and shared.put_result(output.pixels):
                yield schema.Reply(image=shared.result_header(wire.header_for(output.pixels, transfer, "result")))
            else:
                yield from wire.image_events(output.pixels, transfer, output.role)
        yield schema.Reply(summary=self._summary(model, outcome))

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
                yield from self._stream(rpc, requests, context)
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


def is_loopback(host):
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


class Daemon:
    """The server, its service and its shutdown, in one object (tests start it in-process too)."""

    def __init__(self, host="127.0.0.1", port=auth.DEFAULT_PORT, unix=None, token=None, device="cpu",
                 max_pixels=wire.DEFAULT_MAX_PIXELS, allow_remote=False, queue_capacity=8):
        if unix is None and not allow_remote and not is_loopback(host):
            raise ValueError("refusing to listen on %s: that is not a loopback address and the daemon would be "
                             "reachable from other machines; pass --allow-remote if you really mean it" % host)
        self.service = Service(device, max_pixels, queue_capacity, local=unix is not None or is_loopback(host))
        kinds = {schema.method_path(rpc): kind for rpc, (_, _, kind) in schema.RPCS.items()}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc"),
                                  interceptors=[auth.TokenInterceptor(token, kinds)], options=CHANNEL_OPTIONS)
        self.server.add_generic_rpc_handlers((_generic_handler(self.service),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((schema.SERVICE, reflection.SERVICE_NAME, health.SERVICE_NAME),
                                            self.server, pool=schema.POOL)
        if unix:
            if os.path.exists(unix):
                os.unlink(unix)
            old_umask = os.umask(0o177)  # the socket file is created 0600: only this user may connect
            try:
                self.server.add_insecure_port("unix:" + unix)
            finally:
                os.umask(old_umask)
            self.address = "unix:" + unix
        else:
            bound = self.server.add_insecure_port("%s:%d" % (host, port))
            if bound == 0:
                raise OSError("could not listen on %s:%d (is another daemon running there?)" % (host, port))
            self.address = "%s:%d" % (host, bound)
        self.unix = unix
        self._stopped = threading.Event()

    def start(self):
        self.server.start()
        if self.unix:
            os.chmod(self.unix, 0o600)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set(schema.SERVICE, health_pb2.HealthCheckResponse.SERVING)
        return self

    def stop(self, grace=5.0):
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.service.queue.closed.set()
        self.server.stop(grace).wait()
        self.service.queue.close(wait=True, timeout=grace)
        if self.unix and os.path.exists(self.unix):
            os.unlink(self.unix)

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
