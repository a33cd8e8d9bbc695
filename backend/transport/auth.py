"""Who may talk to the daemon: a random bearer token in the user's config dir (mode 0600).

Local clients read the same file, so nobody types it; another user of the machine cannot read it.
Health checks and reflection need no token (they reveal nothing and monitoring tools send none).

It cannot fail open: the token file is written atomically (a half-written or empty file is never
left behind by us), the daemon refuses to start on a token shorter than the ones it makes (a file
truncated by a full disk, or emptied by hand), and neither side ever sends or accepts an empty token.
"""

import hmac
import logging
import os
import secrets
import stat

import grpc

DEFAULT_PORT = 50551
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
TOKEN_BYTES = 32
TOKEN_CHARS = len(secrets.token_urlsafe(TOKEN_BYTES))  # 43: what ``new_token`` makes
log = logging.getLogger("semantic_enhance.auth")


class TokenError(Exception):
    """The token file cannot be used; the message is one sentence saying what to do."""


def config_dir():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "semantic-enhance")


def default_token_file():
    return os.path.join(config_dir(), "token")


def new_token():
    return secrets.token_urlsafe(TOKEN_BYTES)


def _write_atomically(path, token):
    """Temporary name, fsync, then link into place (a rename that never replaces a token another daemon
    wrote meanwhile); the file is 0600 from its first byte. Returns the token now at ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, ".%s.%s.tmp" % (os.path.basename(path), secrets.token_hex(8)))
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another daemon started at the same moment: use its token
            return None
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)
        return token
    finally:
        os.unlink(temporary)


def ensure_token(path=None):
    """The daemon's token: read from ``path``, or a new random one written there (mode 0600) when there is
    none. Raises TokenError on a token shorter than the generated length."""
    path = path or default_token_file()
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        written = _write_atomically(path, new_token())
        if written is not None:
            return written
    warn_if_readable(path)
    token = read_token(path)
    if len(token) < TOKEN_CHARS:
        raise TokenError("the token file %s holds %d characters, fewer than the %d of a token this daemon makes "
                         "(an empty or cut-off file cannot protect the daemon); delete it and start again to "
                         "make a new one" % (path, len(token), TOKEN_CHARS))
    return token


def warn_if_readable(path):
    """Log a warning when users other than the owner may read the token file. Returns True if so."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        log.warning("the token file %s is readable by other users (mode %04o): anyone who can read it can use "
                    "the daemon; run `chmod 600 %s`", path, mode, path)
        return True
    return False


def read_token(path=None):
    with open(path or default_token_file()) as handle:
        return handle.read().strip()


def _refusal(kind, message):
    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    factory = {"unary": grpc.unary_unary_rpc_method_handler, "stream": grpc.stream_stream_rpc_method_handler}
    return factory[kind](refuse)


class TokenInterceptor(grpc.ServerInterceptor):
    """Lets a call through only with ``authorization: Bearer <token>``; never with an empty token."""

    def __init__(self, token, kinds, wrap=None):
        if not token or len(token) < 16:
            raise TokenError("the daemon needs a token of at least 16 characters; an empty token would let "
                             "anyone in")
        self.expected = ("Bearer " + token).encode()
        self.kinds = kinds  # method path -> "unary" | "stream"
        self.wrap = wrap or (lambda method, handler: handler)  # e.g. the server's limits on open streams

    def intercept_service(self, continuation, details):
        if details.method.startswith(OPEN_PREFIXES):
            return self.wrap(details.method, continuation(details))
        supplied = dict(details.invocation_metadata or ()).get("authorization", "")
        if not isinstance(supplied, str):
            supplied = ""
        kind = self.kinds.get(details.method, "stream")
        if not supplied or supplied.strip() in ("Bearer", ""):
            return _refusal(kind, "no token: send 'authorization: Bearer <token>' metadata with the token from "
                                  "the daemon's token file")
        if hmac.compare_digest(supplied.encode(), self.expected):
            return self.wrap(details.method, continuation(details))
        return _refusal(kind, "the token is wrong: use the one in the daemon's token file")
