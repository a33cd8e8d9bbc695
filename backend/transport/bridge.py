"""A gRPC relay on stdin/stdout, for clients whose Python cannot import grpcio (GIMP's bundled Python).

The GIMP plug-in starts this file with the backend's own interpreter (``install-gimp-plugin`` records
which one) and makes exactly one call through it. The relay never parses messages: it forwards the
serialized requests and replies as opaque bytes, so it needs grpcio and the standard library only,
and runs both as ``python -m backend.transport.bridge`` and as a plain file copied next to the plug-in.

Frames in both directions are ``kind (1 byte) + length (4 bytes, big-endian) + payload``:

    client -> relay   C  JSON {"target", "method", "unary", "metadata": [[k, v]], "timeout"}   (first)
                      M  one serialized request message
                      E  no more requests
    relay -> client   M  one serialized reply message
                      S  JSON {"code": "OK" or a grpc.StatusCode name, "details": "..."}   (last)

If the client goes away (its end of stdin closes before the call is over, e.g. GIMP killed the
plug-in because the user pressed Cancel), the relay cancels the call, so the daemon stops the job.
"""

import json
import struct
import sys
import threading

HEADER = struct.Struct(">cI")


def read_frame(stream):
    """Return (kind, payload), or (None, b"") at the end of the stream."""
    head = _read_exactly(stream, HEADER.size)
    if head is None:
        return None, b""
    kind, length = HEADER.unpack(head)
    payload = _read_exactly(stream, length)
    if payload is None:
        return None, b""
    return kind, payload


def write_frame(stream, kind, payload):
    stream.write(HEADER.pack(kind, len(payload)))
    stream.write(payload)


def _read_exactly(stream, count):
    parts, missing = [], count
    while missing:
        part = stream.read(missing)
        if not part:
            return None
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def relay(stdin, stdout):
    """Make the one call described on ``stdin`` and write its replies and final status to ``stdout``."""
    import grpc

    kind, payload = read_frame(stdin)
    if kind != b"C":
        write_frame(stdout, b"S", json.dumps({"code": "INVALID_ARGUMENT",
                                              "details": "the relay expected a call frame first"}).encode())
        return 2
    spec = json.loads(payload.decode("utf-8"))
    metadata = [tuple(pair) for pair in spec.get("metadata", [])]
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    status = {"code": "OK", "details": ""}
    with grpc.insecure_channel(spec["target"], options=options) as channel:
        try:
            if spec.get("unary"):
                kind, request = read_frame(stdin)
                if kind != b"M":
                    return 1  # the client went away before sending its request
                method = channel.unary_unary(spec["method"])
                reply = method(request, metadata=metadata, timeout=spec.get("timeout"))
                write_frame(stdout, b"M", reply)
            else:
                _stream_call(channel, spec, metadata, stdin, stdout)
        except grpc.RpcError as error:
            status = {"code": error.code().name, "details": error.details() or ""}
        except (BrokenPipeError, OSError):
            return 1  # the client closed our stdout: nobody is left to tell
    try:
        write_frame(stdout, b"S", json.dumps(status).encode())
        stdout.flush()
    except (BrokenPipeError, OSError):
        return 1
    return 0


def _stream_call(channel, spec, metadata, stdin, stdout):
    holder = {}
    client_gone = threading.Event()

    def requests():
        while True:
            kind, message = read_frame(stdin)
            if kind == b"M":
                yield message
            elif kind == b"E":
                threading.Thread(target=watch_stdin, daemon=True).start()
                return
            else:  # end of stdin mid-upload: the client is gone
                client_gone.set()
                call = holder.get("call")
                if call is not None:
                    call.cancel()
                return

    def watch_stdin():
        # After the upload the client sends nothing more; EOF means it is gone (cancelled or killed).
        read_frame(stdin)
        client_gone.set()
        call = holder.get("call")
        if call is not None:
            call.cancel()

    method = channel.stream_stream(spec["method"])
    call = method(requests(), metadata=metadata, timeout=spec.get("timeout"))
    holder["call"] = call
    if client_gone.is_set():
        call.cancel()
    for reply in call:
        write_frame(stdout, b"M", reply)
        stdout.flush()


def main():
    return relay(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
