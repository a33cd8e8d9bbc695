"""Who may talk to the daemon: a random bearer token in the user's config dir (mode 0600).

Local clients read the same file, so nobody types it; another user of the machine cannot read it.
Health checks and reflection need no token (they reveal nothing and monitoring tools send none).
"""

import hmac
import os
import secrets

import grpc

DEFAULT_PORT = 50551
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def config_dir():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "semantic-enhance")


def default_token_file():
    return os.path.join(config_dir(), "token")


def ensure_token(path=None):
    """Read the token at ``path``, creating a new random one (file mode 0600) when there is none."""
    path = path or default_token_file()
    if os.path.exists(path):
        return read_token(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token


def read_token(path=None):
    with open(path or default_token_file()) as handle:
        return handle.read().strip()


def _refusal(kind, message):
    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    factory = {"unary": grpc.unary_unary_rpc_method_handler, "stream": grpc.stream_stream_rpc_method_handler}
    return factory[kind](refuse)


class TokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, token, kinds):
        self.expected = ("Bearer " + token).encode()
        self.kinds = kinds  # method path -> "unary" | "stream"

    def intercept_service(self, continuation, details):
        if details.method.startswith(OPEN_PREFIXES):
            return continuation(details)
        supplied = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(supplied.encode(), self.expected):
            return continuation(details)
        kind = self.kinds.get(details.method, "stream")
        if not supplied:
            return _refusal(kind, "no token: send 'authorization: Bearer <token>' metadata; the token is in "
                                  "%s on the daemon's machine" % default_token_file())
        return _refusal(kind, "the token is wrong: use the one in the daemon's token file")
