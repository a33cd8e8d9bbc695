"""Talking to the daemon: in-process grpcio when GIMP's Python has it, else the relay process.

Both paths move serialized messages as opaque bytes (the relay never parses them), so the message
classes come from one place (``schema``, built from the descriptor set; fine on protobuf 4.21) and
the two paths differ only in who owns the socket. Failures become ``BackendError`` with a sentence a
GIMP user can act on (the daemon is down → the command that starts it).

Cancelling: GIMP kills a plug-in whose progress the user cancels. In-process, the socket dies with
the plug-in; through the relay, the relay sees its stdin close and cancels the call. Either way the
daemon sees CANCELLED and stops the job.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading

from . import bridge, schema, wire
from .settings import grpc_target

CALL_TIMEOUT_S = 3600.0   # a 24 MP layer on a CPU daemon may take minutes; never hang forever
LIST_TIMEOUT_S = 10.0


class BackendError(Exception):
    """A failed call, with ``code`` (a gRPC status name) and a sentence for the user as the message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def explain(code, details, settings):
    """Turn a gRPC status into what the user should know and do."""
    where = settings.address
    if code == "UNAVAILABLE":
        return ("Cannot reach the Semantic Enhance daemon at %s (%s). Start it in a terminal with\n"
                "    semantic-enhance serve\n"
                "and try again, or set its address in Filters → Semantic Enhance → Backend…"
                % (where, details or "connection refused"))
    if code == "UNAUTHENTICATED":
        if settings.read_token():
            hint = "the token does not match; the daemon's current token is in %s" % settings.token_file
        else:
            hint = "no token was found in %s (the daemon writes it when it starts)" % settings.token_file
        return ("The daemon at %s refused the request: %s. Set the token file in Filters → Semantic Enhance → "
                "Backend… (%s)" % (where, hint, details))
    if code == "DEADLINE_EXCEEDED":
        return "The daemon at %s did not answer in time (%s)." % (where, details)
    if code == "CANCELLED":
        return "Cancelled."
    if code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "NOT_FOUND", "ALREADY_EXISTS"):
        return "The daemon said: %s" % details  # the daemon's sentences are written for people
    return "The daemon at %s failed (%s): %s" % (where, code, details)


class Transport:
    """One call at a time: ``unary(rpc, bytes) -> bytes``; ``stream(rpc, iter of bytes) -> iter of bytes``."""

    name = ""

    def __init__(self, settings):
        self.settings = settings

    def metadata(self):
        token = self.settings.read_token()
        return [("authorization", "Bearer " + token)] if token else []


class GrpcTransport(Transport):
    name = "grpc"

    def __init__(self, settings, grpc_module):
        super().__init__(settings)
        self.grpc = grpc_module

    def _channel(self):
        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        return self.grpc.insecure_channel(grpc_target(self.settings.address), options=options)

    def unary(self, rpc, request, timeout=LIST_TIMEOUT_S):
        with self._channel() as channel:
            try:
                return channel.unary_unary(schema.method_path(rpc))(request, metadata=self.metadata(), timeout=timeout)
            except self.grpc.RpcError as error:
                raise BackendError(error.code().name, explain(error.code().name, error.details(), self.settings))

    def stream(self, rpc, requests, timeout=CALL_TIMEOUT_S):
        with self._channel() as channel:
            call = channel.stream_stream(schema.method_path(rpc))(requests, metadata=self.metadata(), timeout=timeout)
            try:
                for reply in call:
                    yield reply
            except self.grpc.RpcError as error:
                raise BackendError(error.code().name, explain(error.code().name, error.details(), self.settings))
            finally:
                call.cancel()  # no-op after a normal end; stops the job if our reader gave up


class BridgeTransport(Transport):
    """The call runs in ``backend_python bridge.py``; we write request frames, read reply frames."""

    name = "bridge"

    def _start(self, rpc, unary, timeout):
        python = self.settings.backend_python
        if not python or not os.path.exists(python):
            raise BackendError("FAILED_PRECONDITION", (
                "GIMP's Python cannot import grpcio, and no backend Python is recorded to relay the calls. "
                "Run  semantic-enhance install-gimp-plugin  from the environment where the daemon is installed "
                "(it records its interpreter), or set SEMANTIC_ENHANCE_PYTHON."))
        # GIMP may point PYTHONPATH/PYTHONHOME at its own bundled Python; the relay runs in the backend's.
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        errors = tempfile.TemporaryFile()  # not a pipe: a chatty relay must never block on a full one
        process = subprocess.Popen([python, os.path.abspath(bridge.__file__)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=errors, env=environ, creationflags=flags)
        process.errors = errors
        spec = {"target": grpc_target(self.settings.address), "method": schema.method_path(rpc),
                "unary": unary, "metadata": self.metadata(), "timeout": timeout}
        try:
            bridge.write_frame(process.stdin, b"C", json.dumps(spec).encode("utf-8"))
        except OSError:
            pass  # reported when the replies are read
        return process

    def _replies(self, process):
        try:
            while True:
                kind, payload = bridge.read_frame(process.stdout)
                if kind == b"M":
                    yield payload
                elif kind == b"S":
                    status = json.loads(payload.decode("utf-8"))
                    if status["code"] != "OK":
                        raise BackendError(status["code"], explain(status["code"], status["details"], self.settings))
                    return
                else:
                    process.wait(timeout=10)
                    process.errors.seek(0)
                    error = process.errors.read().decode("utf-8", "replace").strip().splitlines()
                    raise BackendError("INTERNAL", "The gRPC relay (%s) stopped unexpectedly: %s"
                                       % (self.settings.backend_python, error[-1] if error else "no message"))
        finally:
            for pipe in (process.stdin, process.stdout, process.errors):
                try:
                    pipe.close()
                except OSError:
                    pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def unary(self, rpc, request, timeout=LIST_TIMEOUT_S):
        process = self._start(rpc, True, timeout)
        try:
            bridge.write_frame(process.stdin, b"M", request)
            process.stdin.flush()
        except OSError:  # BrokenPipeError: the relay ended already; its status or stderr says why
            pass
        replies = list(self._replies(process))
        return replies[0]

    def stream(self, rpc, requests, timeout=CALL_TIMEOUT_S):
        process = self._start(rpc, False, timeout)
        failure = []

        def upload():
            # In a thread: the relay may answer (progress) while we still send, and pipes are finite.
            try:
                for request in requests:
                    bridge.write_frame(process.stdin, b"M", request)
                bridge.write_frame(process.stdin, b"E", b"")
                process.stdin.flush()
            except (OSError, ValueError):
                pass  # the relay ended early; its status frame (or its stderr) says why
            except Exception as error:  # noqa: BLE001  (reported after the replies)
                failure.append(error)

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        yield from self._replies(process)
        sender.join()
        if failure:
            raise failure[0]


def open_transport(settings, prefer=None):
    """The in-process transport when grpcio imports and works, else the relay.

    ``prefer`` (or env SEMANTIC_ENHANCE_TRANSPORT) = "grpc" or "bridge" forces one.
    """
    prefer = prefer or os.environ.get("SEMANTIC_ENHANCE_TRANSPORT", "")
    if prefer != "bridge":
        try:
            import grpc
            return GrpcTransport(settings, grpc)
        except Exception as error:  # ImportError, or a grpcio built for another Python ABI
            if prefer == "grpc":
                raise BackendError("FAILED_PRECONDITION", "GIMP's Python cannot use grpcio: %s" % error)
    return BridgeTransport(settings)


class Client:
    """The calls the plug-in makes, in terms of messages and numpy arrays."""

    def __init__(self, settings, prefer=None):
        self.settings = settings
        self.transport = open_transport(settings, prefer)

    def list_models(self):
        request_class, reply_class, _ = schema.RPCS["ListModels"]
        reply = self.transport.unary("ListModels", request_class().SerializeToString())
        return reply_class.FromString(reply)

    def run(self, rpc, setup, image, mask=None, on_progress=None):
        """Send ``image`` (and ``mask``) with ``setup``; return a ``wire.ReplyReader`` with images and summary."""
        request_class, reply_class, _ = schema.RPCS[rpc]
        requests = wire.request_frames(request_class, setup, image, mask)  # pixels as pre-encoded chunk frames
        decode = wire.frame_decoder(reply_class, wire.REPLY_CHUNK_TAG)
        replies = (decode(data) for data in self.transport.stream(rpc, requests))
        try:
            return wire.ReplyReader(on_progress).read(replies)
        except wire.WireError as error:
            raise BackendError(error.code, "The daemon's reply was broken: %s" % error)


    def learn_style(self, setup, pairs, on_progress=None):
        """Stream ``pairs`` ([(name, before, after)] arrays) with the LearnStyle ``setup``; the reply's reader."""
        decode = wire.frame_decoder(schema.Reply, wire.REPLY_CHUNK_TAG)
        replies = (decode(data) for data in self.transport.stream("LearnStyle", wire.style_pair_frames(setup, pairs)))
        try:
            return wire.ReplyReader(on_progress).read(replies)
        except wire.WireError as error:
            raise BackendError(error.code, "The daemon's reply was broken: %s" % error)


def describe_models(reply):
    """A few lines for the Backend… report: which models the daemon hosts."""
    lines = ["Daemon %s on %s; at most %.0f megapixels per layer."
             % (reply.server_version or "?", reply.device or "?", (reply.max_pixels or 0) / 1e6)]
    for model in reply.models:
        state = "ready" if model.installed else "not installed"
        styles = (": " + ", ".join(model.styles)) if model.styles else ""
        lines.append("  %s %s (%s)%s" % (model.id, model.version, state, styles))
        if model.installed:
            for style in model.style_info:
                if style.presets:  # what Personalize's preset fields take
                    lines.append("      %s presets: %s" % (style.name, ", ".join(style.presets)))
    return "\n".join(lines)


if __name__ == "__main__":  # a quick manual check outside GIMP:  python -m se_plugin.transport
    from .settings import resolve
    print(describe_models(Client(resolve()).list_models()))
    sys.exit(0)
