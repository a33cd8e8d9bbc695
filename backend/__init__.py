"""Semantic Enhance backend: the daemon, its model registry, imaging core and command-line client.

Rooms: ``transport`` (gRPC server, auth, streaming), ``jobs`` (queue, cancel, progress), ``models``
(one module per model id + shared backbones), ``imaging`` (colour spaces, filters, full-resolution
application), ``weights`` (manifest + files). ``client`` is the Python API other editors call.
"""

__version__ = "0.1.0"
