"""Message classes of ``semantic_enhance.v1``, built at run time from the compiled descriptor set.

Why not generated ``_pb2`` stubs: generated code pins the protobuf runtime version, and GIMP's own
Python may carry an old runtime (Debian trixie: protobuf 4.21). Building the classes from the
descriptor works from protobuf 4.21 to 7.x. This module depends on protobuf only, so the GIMP
plug-in can carry a copy of it (``install-gimp-plugin`` does).

The descriptor set is made from ``proto/semantic_enhance/v1/semantic_enhance.proto`` by
``make proto``; a test checks it is current.
"""

import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "semantic_enhance.v1"
SERVICE = PACKAGE + ".SemanticEnhance"
DESCRIPTOR_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "semantic_enhance_v1.binpb")


def _message_class(descriptor):
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def load(path=DESCRIPTOR_FILE):
    """Return (pool, namespace) where namespace maps message and enum names to classes / descriptors."""
    with open(path, "rb") as handle:
        file_set = descriptor_pb2.FileDescriptorSet.FromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    namespace = {}
    for file_proto in file_set.file:
        file_descriptor = pool.FindFileByName(file_proto.name)
        for name, descriptor in file_descriptor.message_types_by_name.items():
            namespace[name] = _message_class(descriptor)
        for name, descriptor in file_descriptor.enum_types_by_name.items():
            namespace[name] = descriptor
            for value in descriptor.values:
                namespace[value.name] = value.number
    return pool, namespace


POOL, _NS = load()
globals().update(_NS)

# rpc name -> (request class, reply class, kind); kind: "unary" or "stream" (client stream in, server stream out)
RPCS = {
    "ListModels": (_NS["ListModelsRequest"], _NS["ListModelsReply"], "unary"),
    "Adjust": (_NS["AdjustRequest"], _NS["Reply"], "stream"),
    "Enhance": (_NS["EnhanceRequest"], _NS["Reply"], "stream"),
    "Crop": (_NS["CropRequest"], _NS["Reply"], "stream"),
    "Progressive": (_NS["ProgressiveRequest"], _NS["Reply"], "stream"),
    "ApplyFilters": (_NS["FiltersRequest"], _NS["Reply"], "stream"),
    "Score": (_NS["ScoreRequest"], _NS["Reply"], "stream"),
    "LearnStyle": (_NS["LearnStyleRequest"], _NS["Reply"], "stream"),
}


def method_path(rpc):
    return "/%s/%s" % (SERVICE, rpc)
