"""Where the daemon is and how to prove who we are: address, token, and the backend's Python.

Resolution order, the command-line client's (flags, environment, user config), with the Backend…
dialog's saved settings as the user config:
  1. the environment: ``SEMANTIC_ENHANCE_ADDR`` ("127.0.0.1:50551" or "unix:/path/sock"),
     ``SEMANTIC_ENHANCE_TOKEN_FILE`` (a deliberate override for a session);
  2. what the user saved in Filters → Semantic Enhance → Backend… (``semantic-enhance-backend.json``
     in GIMP's profile folder);
  3. the defaults: 127.0.0.1:50551 and ``$XDG_CONFIG_HOME/semantic-enhance/token``
     (else ``~/.config/semantic-enhance/token``), the file ``semantic-enhance serve`` writes.
The Backend… entry's own arguments come before all of these, for its connection test.

``install-gimp-plugin`` writes ``install.json`` next to the plug-in with the backend's interpreter,
which runs the gRPC relay when GIMP's own Python has no usable grpcio.
"""

import json
import os

DEFAULT_ADDRESS = "127.0.0.1:50551"
SETTINGS_NAME = "semantic-enhance-backend.json"
INSTALL_RECORD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "install.json")


def default_token_file(environ=None):
    environ = os.environ if environ is None else environ
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "semantic-enhance", "token")


class Settings:
    """The resolved connection settings; ``source`` says where the address came from (for messages)."""

    def __init__(self, address, token_file, token="", source="default", backend_python=""):
        self.address = address
        self.token_file = token_file
        self.token = token
        self.source = source
        self.backend_python = backend_python

    def read_token(self):
        """The bearer token: the saved one, else the token file's first line; "" when there is none."""
        if self.token:
            return self.token.strip()
        try:
            with open(self.token_file, encoding="utf-8") as handle:
                return handle.readline().strip()
        except OSError:
            return ""

    def describe(self):
        return {"address": self.address, "token_file": self.token_file, "token_saved": bool(self.token),
                "source": self.source, "backend_python": self.backend_python}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def saved_settings_path(profile_dir):
    return os.path.join(profile_dir, SETTINGS_NAME)


def resolve(profile_dir=None, environ=None, install_record=INSTALL_RECORD):
    """Settings from the saved file in ``profile_dir`` (GIMP's profile), the environment, the defaults."""
    environ = os.environ if environ is None else environ
    saved = _read_json(saved_settings_path(profile_dir)) if profile_dir else {}
    installed = _read_json(install_record)
    address, source = DEFAULT_ADDRESS, "default"
    if saved.get("address"):
        address, source = saved["address"], "Backend… settings"
    if environ.get("SEMANTIC_ENHANCE_ADDR"):
        address, source = environ["SEMANTIC_ENHANCE_ADDR"], "environment (SEMANTIC_ENHANCE_ADDR)"
    token_file = environ.get("SEMANTIC_ENHANCE_TOKEN_FILE") or saved.get("token_file") or default_token_file(environ)
    backend_python = environ.get("SEMANTIC_ENHANCE_PYTHON") or installed.get("backend_python", "")
    return Settings(address, os.path.expanduser(token_file), saved.get("token", ""), source, backend_python)


def save(profile_dir, address="", token_file="", token=""):
    """Write the Backend… settings (only the fields given); the file is private because it may hold a token."""
    path = saved_settings_path(profile_dir)
    values = {key: value for key, value in
              (("address", address.strip()), ("token_file", token_file.strip()), ("token", token.strip())) if value}
    os.makedirs(profile_dir, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2)
    return path


def grpc_target(address):
    """gRPC's name for an address: "unix:/path" and "host:port" pass as they are; "/path" means a socket."""
    if address.startswith("/"):
        return "unix:" + address
    return address
