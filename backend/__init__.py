"""Semantic Enhance backend: the daemon, its model registry, imaging core and command-line client.

Rooms: ``transport`` (gRPC server, auth, streaming), ``jobs`` (queue, cancel, progress), ``models``
(one module per model id + shared backbones), ``imaging`` (colour spaces, filters, full-resolution
application), ``weights`` (manifest + files). ``client`` is the Python API other editors call.
"""

__version__ = "0.1.0"


def _huge_pages_for_big_tensors():
    """Let torch back its large allocations (>= 2 MB) with transparent huge pages where the kernel offers
    them on request (``madvise`` mode): a 24-MP float layer's result is 288 MB, and faulting it in 4 KB pages
    cost 0.17-0.19 s a time on the 2-core test machine, 0.03 s with huge pages (docs/benchmarks.md). torch
    reads the variable once, at its first large allocation, so it is set before any module of the backend
    makes one; a value the user set is kept."""
    import os

    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


_huge_pages_for_big_tensors()
