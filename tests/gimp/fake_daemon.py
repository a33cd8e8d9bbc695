"""A stand-in daemon that answers Adjust, Enhance, Crop, Progressive and Score with known, simple outputs.

The real daemon hosts only the ``filters`` model until the learned models land; this one lets the
GIMP tests check NOW that the plug-in turns every kind of reply (maps, crop boxes, step images) into
the right GIMP items. It speaks the real contract (schema + wire), so a reply it sends is one the real
daemon may send. It ignores the token.
"""

import json
from concurrent import futures

import grpc
import numpy as np

from backend.transport import schema, wire

CROPS = [(0.10, 0.20, 0.50, 0.40, 0.9), (0.25, 0.25, 0.50, 0.50, 0.8), (0.0, 0.0, 1.0, 0.5, 0.7)]
STEPS = [("exposure", [0.42], "Exposure +0.42 EV"), ("gamma", [1.1], "Gamma 1.10"),
         ("contrast", [0.2], "Contrast +0.20")]
MAP_NAMES = ["sky", "person", "everything else"]
# The critic's score, the BRISQUE score a colleague is adding, and a name the plug-in does not know.
SCORES = [("critic", 6.8123, [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.2, 0.05, 0.02]), ("brisque", 23.43, []),
          ("sharpness", 0.53127, [])]


def _receive(requests):
    setup = next(requests).setup
    has_mask = "mask" in setup.DESCRIPTOR.fields_by_name and setup.HasField("mask")
    receiver = wire.Receiver(setup.image, setup.mask if has_mask else None)
    for request in requests:
        receiver.feed(request.chunk)
    image, mask = receiver.finish()
    return setup, image, mask


def _brighter(image, amount):
    top = 1.0 if image.dtype == np.float32 else np.iinfo(image.dtype).max
    shifted = image.astype(np.float64)
    shifted[..., :3] = np.clip(shifted[..., :3] + amount * top, 0, top)
    return shifted.astype(image.dtype)


def _summary(model, parameters, **fields):
    summary = schema.Summary(model=model, model_version="fake", parameters_json=json.dumps(parameters), **fields)
    return schema.Reply(summary=summary)


def adjust(requests, context):
    setup, image, mask = _receive(requests)
    yield schema.Reply(progress=schema.Progress(fraction=0.5, stage="head"))
    yield from wire.image_events(_brighter(image, 0.2), setup.image.transfer, "result")
    if setup.return_maps:
        height, width = image.shape[:2]
        ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :].repeat(height, 0)
        for k in range(len(MAP_NAMES)):
            yield from wire.image_events(np.ascontiguousarray(ramp if k == 0 else 1 - ramp if k == 1 else ramp * 0.5),
                                         schema.LINEAR, "adjustment_map/%d" % k)
    parameters = {"style": setup.style or "foreground-pop-out", "mask_role": setup.mask_role,
                  "mask_channels": 0 if mask is None else int(mask.shape[2]),
                  "selected_preset": setup.selected_preset, "unselected_preset": setup.unselected_preset}
    yield _summary(setup.model or "sa-adjust", parameters, map_names=MAP_NAMES if setup.return_maps else [])


def enhance(requests, context):
    setup, image, mask = _receive(requests)
    yield from wire.image_events(_brighter(image, 0.1), setup.image.transfer, "result")
    yield _summary("enhancegan", {"method": setup.method})


def crop(requests, context):
    setup, image, mask = _receive(requests)
    crops = [schema.CropBox(x=x, y=y, width=w, height=h, score=s) for x, y, w, h, s in CROPS[:setup.count or 5]]
    yield _summary("enhancegan", {"count": setup.count}, crops=crops)


def progressive(requests, context):
    setup, image, mask = _receive(requests)
    stack = schema.FilterStack()
    for index, (name, values, _) in enumerate(STEPS, start=1):
        stack.filters.add(name=name, values=values)
        if setup.return_step_images:
            yield from wire.image_events(_brighter(image, 0.05 * index), setup.image.transfer, "step/%d" % index)
    yield from wire.image_events(_brighter(image, 0.15), setup.image.transfer, "result")
    labels = {"filters": [{"name": n, "values": v, "label": label} for n, v, label in STEPS]}
    yield _summary("progressive", {"filter_stack": labels}, filter_stack=stack)


def score(requests, context):
    setup, image, mask = _receive(requests)
    scores = [schema.Score(name=name, value=value, distribution=distribution) for name, value, distribution in SCORES]
    parameters = {"sample": str(image.dtype), "size": [int(image.shape[1]), int(image.shape[0])],
                  "channels": int(image.shape[2])}
    yield _summary("critic", parameters, scores=scores)


def list_models(request, context):
    return schema.ListModelsReply(server_version="fake", device="cpu", models=[
        schema.ModelInfo(id="sa-adjust", installed=True, styles=["foreground-pop-out", "local-xpro"]),
        schema.ModelInfo(id="fcn-stylize", installed=True, styles=["cold", "spring"])])


def _handler(function, rpc):
    request_class, reply_class, _ = schema.RPCS[rpc]
    return grpc.stream_stream_rpc_method_handler(function, request_deserializer=request_class.FromString,
                                                 response_serializer=wire.serialize)


class FakeDaemon:
    def __init__(self):
        handlers = {"ListModels": grpc.unary_unary_rpc_method_handler(
                        list_models, request_deserializer=schema.ListModelsRequest.FromString,
                        response_serializer=schema.ListModelsReply.SerializeToString),
                    "Adjust": _handler(adjust, "Adjust"), "Enhance": _handler(enhance, "Enhance"),
                    "Crop": _handler(crop, "Crop"), "Progressive": _handler(progressive, "Progressive"),
                    "Score": _handler(score, "Score")}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  options=[("grpc.max_receive_message_length", 64 << 20)])
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(schema.SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = "127.0.0.1:%d" % self.port

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(1)
