"""The Python client API: what the CLI, batch scripts and other editors' plug-ins call.

    from backend.client import Client
    client = Client()                                  # address and token found as the CLI finds them
    result = client.adjust(pixels, style="foreground-pop-out", model="sa-adjust")
    result.image                                       # (H, W, C) array in the input's format

Images are numpy arrays (H, W, C) of uint8, uint16 or float32 with C in 1..4; masks (H, W) or
(H, W, K). Every call streams the image to the daemon in chunks, or, to a daemon on this machine,
hands it over in shared memory (``shared_memory=``, see ``Client``), and returns a ``Result``.
Errors raise ``BackendError`` with the gRPC status name and the daemon's sentence.
"""

import json
import os
from dataclasses import dataclass

import grpc
import numpy as np

from .transport import auth, schema, wire
from .transport import shared_memory as shm
from .transport.channel import is_local_address, open_channel  # noqa: F401 (is_local_address: public here)

MASK_ROLES = {"blend": schema.BLEND, "adjustment-map": schema.ADJUSTMENT_MAP}
RESULT_RPCS = ("Adjust", "Enhance", "Progressive", "ApplyFilters")  # those that return a layer-sized "result"


class BackendError(Exception):
    def __init__(self, code, message, shared_memory_unusable=False):
        super().__init__(message)
        self.code = code
        self.shared_memory_unusable = shared_memory_unusable  # the daemon cannot use this client's segments

    def __str__(self):
        return "%s: %s" % (self.code, self.args[0])


@dataclass
class Result:
    images: dict
    summary: object

    @property
    def image(self):
        return self.images.get("result")

    @property
    def parameters(self):
        return json.loads(self.summary.parameters_json or "{}")

    def summary_dict(self):
        from google.protobuf import json_format  # here, not at import: `models` starts faster without it

        return json_format.MessageToDict(self.summary, preserving_proto_field_name=True)


def stack_message(stack):
    """A filter stack ({"filters": [{"name": ..., "values": [...]}, ...]}) as its message; BackendError
    (INVALID_ARGUMENT, one sentence) when its shape is wrong. The daemon checks names and values."""
    from google.protobuf import json_format

    message = schema.FiltersSetup().stack
    try:
        json_format.ParseDict(stack, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as error:
        raise BackendError("INVALID_ARGUMENT", 'the filter stack is malformed (%s); it is {"filters": '
                           '[{"name": ..., "values": [...]}, ...]}' % " ".join(str(error).split()).rstrip("."))
    return message


def resolve_address(address=None):
    return address or os.environ.get("SEMANTIC_ENHANCE_ADDR") or "127.0.0.1:%d" % auth.DEFAULT_PORT


def resolve_token(token=None, token_file=None):
    """The token to send, or "" when there is none (then the client sends no authorization at all)."""
    if token:
        return token
    path = token_file or os.environ.get("SEMANTIC_ENHANCE_TOKEN_FILE") or auth.default_token_file()
    try:
        return auth.read_token(path)
    except OSError:
        return ""


def resolve_tls_ca(tls_ca=None):
    return tls_ca or os.environ.get("SEMANTIC_ENHANCE_TLS_CA") or None


def _rpc_error(error):
    code = error.code().name if hasattr(error, "code") and error.code() else "UNKNOWN"
    details = error.details() if hasattr(error, "details") else str(error)
    if code == "UNAVAILABLE":
        details = "cannot reach the Semantic Enhance daemon (%s); start it with `semantic-enhance serve`" % details
    trailing = dict(error.trailing_metadata() or ()) if hasattr(error, "trailing_metadata") else {}
    return BackendError(code, details, shared_memory_unusable=shm.UNUSABLE_KEY in trailing)


class Client:
    """``shared_memory``: "auto" (default) hands pixels over in shared memory when the daemon is on this
    machine (a loopback or Unix-socket address, and the daemon says it takes segments), and streams them
    otherwise, or from the first call on which the daemon cannot see this client's segments (another
    container or user); True always uses shared memory (errors if it cannot); False always streams.
    Results are the same either way, bit for bit.

    ``tls_ca``: a PEM file (the daemon's CA or its self-signed certificate; default
    ``$SEMANTIC_ENHANCE_TLS_CA``) for a daemon that serves TLS (``serve --tls-cert``); ``tls_server_name``
    when the certificate names another host than ``address`` does."""

    def __init__(self, address=None, token=None, token_file=None, timeout=None, shared_memory="auto",
                 tls_ca=None, tls_server_name=None):
        if shared_memory not in (True, False, "auto"):
            raise ValueError("shared_memory is True, False or 'auto', not %r" % (shared_memory,))
        if shared_memory is True and not shm.available():
            raise ValueError("shared memory needs %s (Linux); use shared_memory='auto' or False"
                             % shm.SEGMENT_DIR)
        self.address = resolve_address(address)
        token = resolve_token(token, token_file)
        self.metadata = (("authorization", "Bearer " + token),) if token else ()  # never an empty token
        self.timeout = timeout
        self.shared_memory = shared_memory
        self._use_segments = None if shared_memory == "auto" else shared_memory  # None: ask the daemon once
        self.channel = open_channel(self.address, resolve_tls_ca(tls_ca), tls_server_name)
        self._calls = {}
        self._kept = shm.KeptSegments()

    def close(self):
        self._kept.close()
        self.channel.close()

    def shared_array(self, shape, dtype=np.uint8):
        """An empty array to read a layer's pixels straight into: when pixels go in shared memory it lies
        in a segment this client keeps, so every call on it names the segment instead of copying the
        pixels (an editor fills it once); otherwise a plain array. ``release`` or ``close`` frees it."""
        if self._segments_wanted():
            return self._kept.array(shape, dtype)
        return np.empty(shape, dtype)

    def release(self, array):
        """Free the segment behind an array from ``shared_array`` (no-op for a plain array)."""
        if self._kept.find(array) is not None:
            self._kept.release(array)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, rpc):
        if rpc not in self._calls:
            request_class, reply_class, kind = schema.RPCS[rpc]
            if kind == "unary":
                self._calls[rpc] = self.channel.unary_unary(schema.method_path(rpc), request_class.SerializeToString,
                                                            reply_class.FromString)
            else:  # pixels travel as pre-encoded chunk frames both ways (wire.py, "the chunk fast path")
                self._calls[rpc] = self.channel.stream_stream(
                    schema.method_path(rpc), request_serializer=wire.serialize,
                    response_deserializer=wire.frame_decoder(reply_class, wire.REPLY_CHUNK_TAG))
        return self._calls[rpc]

    def models(self):
        try:
            return self._call("ListModels")(schema.ListModelsRequest(), metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as error:
            raise _rpc_error(error) from None

    def stream(self, rpc, setup, image, mask=None, on_progress=None):
        """Send one image (and mask) with its setup; collect the images and summary that come back."""
        if self._segments_wanted():
            try:
                return self._stream_shared(rpc, setup, image, mask, on_progress)
            except BackendError as error:
                if self.shared_memory != "auto" or not error.shared_memory_unusable:
                    raise
                self._use_segments = False  # the daemon cannot see our segments: stream from now on
        request_class = schema.RPCS[rpc][0]
        call = self._call(rpc)(wire.request_frames(request_class, setup, image, mask),
                               metadata=self.metadata, timeout=self.timeout)
        return self._collect(call, call, wire.ReplyReader(on_progress))

    def _segments_wanted(self):
        if self._use_segments is None:  # "auto", first call
            self._use_segments = (is_local_address(self.address) and shm.available()
                                  and self.models().shared_memory)
        return self._use_segments

    def _stream_shared(self, rpc, setup, image, mask, on_progress):
        """The pixels go in segments this call makes; only the setup naming them goes over gRPC, and the
        result comes back in a segment made for it (see shared_memory.py)."""
        shared_setup = type(setup)()
        shared_setup.CopyFrom(setup)
        result_bytes = wire.byte_view(image).nbytes if rpc in RESULT_RPCS else 0  # a result has the layer's format
        with shm.CallSegments() as segments:
            try:
                # pixels already in a segment this client keeps (``shared_array``) are named, not copied
                shared_setup.image.shared_memory.CopyFrom(self._kept.find(image) or segments.put(image))
                if mask is not None:
                    shared_setup.mask.shared_memory.CopyFrom(self._kept.find(mask) or segments.put(mask))
                if result_bytes:
                    shared_setup.image.result_shared_memory.CopyFrom(segments.for_result(result_bytes))
            except OSError as error:
                raise BackendError("RESOURCE_EXHAUSTED", "cannot put the pixels in shared memory (%s): %s"
                                   % (shm.SEGMENT_DIR, error.strerror),
                                   shared_memory_unusable=True) from None
            request_class = schema.RPCS[rpc][0]
            call = self._call(rpc)(iter([request_class(setup=shared_setup).SerializeToString()]),
                                   metadata=self.metadata, timeout=self.timeout)

            def replies():
                for reply in call:
                    segments.unlink()  # the daemon opened them all before its first reply
                    yield reply
            return self._collect(call, replies(), wire.ReplyReader(on_progress, segments.results))

    @staticmethod
    def _collect(call, replies, reader):
        try:
            reader.read(replies)
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        except wire.WireError as error:
            raise BackendError(error.code, str(error)) from None
        finally:
            call.cancel()  # no-op after a normal end; stops the daemon's job if we are interrupted
        return Result(reader.images, reader.summary)

    @staticmethod
    def _headers(image, mask, transfer):
        image_header = wire.header_for(image, transfer)
        return image_header, (wire.mask_header_for(mask) if mask is not None else None)

    def adjust(self, image, style, model="", mask=None, mask_role="blend", return_maps=False, strength=None,
               selected_preset=None, unselected_preset=None, options=None, transfer=None, on_progress=None):
        """``strength`` 0..1; with ``mask_role="adjustment-map"`` a one-channel mask says where
        ``selected_preset`` applies and ``unselected_preset`` elsewhere (names as ListModels lists them, or
        numbers; None: the style's defaults)."""
        image_header, mask_header = self._headers(image, mask, transfer)
        options = dict(options or {})
        if strength is not None:
            options["strength"] = repr(float(strength))
        setup = schema.AdjustSetup(image=image_header, mask=mask_header, model=model, style=style,
                                   return_maps=return_maps, mask_role=MASK_ROLES[mask_role], options=options)
        for field, preset in (("selected_preset", selected_preset), ("unselected_preset", unselected_preset)):
            if isinstance(preset, str):
                setattr(setup, field + "_name", preset)
            elif preset is not None:
                setattr(setup, field, int(preset))
        return self.stream("Adjust", setup, image, mask, on_progress)

    def enhance(self, image, method="piecewise", mask=None, options=None, transfer=None, on_progress=None):
        image_header, mask_header = self._headers(image, mask, transfer)
        setup = schema.EnhanceSetup(image=image_header, mask=mask_header, method=method, options=options or {})
        return self.stream("Enhance", setup, image, mask, on_progress)

    def crop(self, image, count=5, aspect_ratio=0.0, transfer=None, on_progress=None):
        setup = schema.CropSetup(image=wire.header_for(image, transfer), count=count, aspect_ratio=aspect_ratio)
        return self.stream("Crop", setup, image, None, on_progress)

    def progressive(self, image, steps=0, return_step_images=False, mask=None, transfer=None, on_progress=None,
                    options=None):
        """``options``: {"learning-rate": "0.001", "exposure-start": "0", "strength": "1"} (strings)."""
        image_header, mask_header = self._headers(image, mask, transfer)
        setup = schema.ProgressiveSetup(image=image_header, mask=mask_header, steps=steps,
                                        return_step_images=return_step_images, options=options or {})
        return self.stream("Progressive", setup, image, mask, on_progress)

    def filters(self, image, stack, mask=None, transfer=None, on_progress=None):
        """``stack``: {"filters": [{"name": "exposure", "values": [0.4]}, ...]} (the JSON progressive writes)."""
        image_header, mask_header = self._headers(image, mask, transfer)
        setup = schema.FiltersSetup(image=image_header, mask=mask_header)
        setup.stack.CopyFrom(stack_message(stack))
        return self.stream("ApplyFilters", setup, image, mask, on_progress)

    def score(self, image, transfer=None, on_progress=None):
        setup = schema.ScoreSetup(image=wire.header_for(image, transfer))
        return self.stream("Score", setup, image, None, on_progress)

    def learn_style(self, pairs, name, replace=False, transfer=None, on_progress=None, options=None):
        """Teach the daemon a style from before/after ``pairs`` (at least 3): each ``(before, after)`` or
        ``(pair name, before, after)``, arrays as for ``adjust`` (any size; a pair's two images may differ by a
        resize). The daemon learns, writes the style into its user's styles folder and serves it at once:
        ``adjust(image, style=name)`` works from the next call. The result's ``summary.learnt_style`` names
        it; ``parameters`` hold the learning report (pairs, training_ratio, held_out_ratio, path). Interrupting
        the call (or ``on_progress`` raising) cancels the learning, and then nothing is written. ``options``
        {name: value}: ``position_terms`` (yes/no), ``regularisation`` (0.1-10); docs/learn-style.md."""
        pairs = [pair if len(pair) == 3 else (None,) + tuple(pair) for pair in pairs]
        setup = schema.LearnStyleSetup(name=name, pair_count=len(pairs), replace=replace,
                                       options={str(k): str(v) for k, v in (options or {}).items()})
        call = self._call("LearnStyle")(wire.style_pair_frames(setup, pairs, transfer),
                                        metadata=self.metadata, timeout=self.timeout)
        return self._collect(call, call, wire.ReplyReader(on_progress))


def embedded(device="cpu", **daemon_options):
    """Start a private daemon in this process on a free loopback port; returns (daemon, client)."""
    import secrets

    from .transport.server import Daemon

    token = secrets.token_urlsafe(auth.TOKEN_BYTES)
    daemon = Daemon(port=0, token=token, device=device, **daemon_options).start()
    return daemon, Client(daemon.address, token=token, tls_ca=daemon_options.get("tls_cert"))
