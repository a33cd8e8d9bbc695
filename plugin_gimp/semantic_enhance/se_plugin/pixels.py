"""Layer and mask pixels in memory, through Gegl buffers (no temporary files). Needs GIMP.

Precision is kept: 8-bit layers travel as u8, 16-bit as u16, everything wider (32-bit integer, half,
float, double) as f32. Linear-light images travel as linear RGB, the others as sRGB-encoded R'G'B'
(the wire header says which). A layer is read over its own extent, wherever it sits: offsets, a
layer smaller or larger than the canvas; the selection is read over the same rectangle, so the part
of a layer outside the canvas counts as unselected.
"""

import numpy as np
from gi.repository import Gegl, Gimp

from . import schema

_WIDE = ("U32", "HALF", "FLOAT", "DOUBLE")


def sample_of(image):
    """(babl type name, numpy dtype, linear?) for the image's precision."""
    name = image.get_precision().value_nick.upper().replace("-", "_")  # e.g. "U16_NON_LINEAR"
    linear = name.endswith("_LINEAR") and not name.endswith("NON_LINEAR")
    if name.startswith("U8"):
        return "u8", np.uint8, linear
    if name.startswith("U16"):
        return "u16", np.uint16, linear
    return "float", np.float32, linear


class LayerPixels:
    """A drawable's pixels as a (H, W, C) array plus what is needed to write results back beside it."""

    def __init__(self, drawable):
        self.drawable = drawable
        self.image = drawable.get_image()
        self.width, self.height = drawable.get_width(), drawable.get_height()
        _, self.offset_x, self.offset_y = drawable.get_offsets()
        self.type_name, self.dtype, self.linear = sample_of(self.image)
        self.has_alpha = drawable.has_alpha()
        self.transfer = schema.LINEAR if self.linear else schema.PERCEPTUAL

    def rgb_format(self, channels):
        model = ("RGB" if self.linear else "R'G'B'") + ("A" if channels == 4 else "")
        if channels in (1, 2):
            model = ("Y" if self.linear else "Y'") + ("A" if channels == 2 else "")
        return "%s %s" % (model, self.type_name)

    def read(self):
        channels = 4 if self.has_alpha else 3
        buffer = self.drawable.get_buffer()
        data = buffer.get(Gegl.Rectangle.new(0, 0, self.width, self.height), 1.0,
                          self.rgb_format(channels), Gegl.AbyssPolicy.CLAMP)
        return np.frombuffer(bytes(data), self.dtype).reshape(self.height, self.width, channels)

    def read_selection(self):
        """The selection over this layer as a soft (H, W) mask in the image's precision, or None.

        Selection channels hold coverage, not colour: read them as linear "Y" so 50% stays 50%.
        """
        empty = Gimp.Selection.is_empty(self.image)
        if empty:
            return None
        return read_channel(self.image.get_selection(), self)

    def selection_touches_layer(self):
        _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(self.image)
        return non_empty and x1 < self.offset_x + self.width and x2 > self.offset_x and \
            y1 < self.offset_y + self.height and y2 > self.offset_y


def read_channel(channel, layer):
    """A canvas-sized channel (selection, adjustment map) over ``layer``'s rectangle, as (H, W)."""
    buffer = channel.get_buffer()
    rect = Gegl.Rectangle.new(layer.offset_x, layer.offset_y, layer.width, layer.height)
    data = buffer.get(rect, 1.0, "Y %s" % layer.type_name, Gegl.AbyssPolicy.NONE)
    return np.frombuffer(bytes(data), layer.dtype).reshape(layer.height, layer.width)


def _format_for(array, linear):
    type_name = {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16", np.dtype(np.float32): "float"}[array.dtype]
    channels = 1 if array.ndim == 2 else array.shape[2]
    prefix = {1: "Y", 2: "YA", 3: "RGB", 4: "RGBA"}[channels]
    if not linear:
        prefix = prefix.replace("Y", "Y'").replace("RGB", "R'G'B'")
    return "%s %s" % (prefix, type_name)


def new_layer(source, name, pixels, transfer, group=None):
    """A new layer holding ``pixels`` (H, W, C), placed exactly over ``source``: just above it, or at the
    top of ``group``. A result without alpha takes the source's alpha, so transparent areas stay so.
    """
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if source.has_alpha and channels in (1, 3) and (height, width) == (source.height, source.width):
        alpha = source.read()[..., -1:]
        pixels = np.concatenate([pixels.reshape(height, width, channels), _convert(alpha, pixels.dtype)], axis=2)
        channels += 1
    with_alpha = channels in (2, 4)
    if source.image.get_base_type() == Gimp.ImageBaseType.GRAY:
        layer_type = Gimp.ImageType.GRAYA_IMAGE if with_alpha else Gimp.ImageType.GRAY_IMAGE
    else:
        layer_type = Gimp.ImageType.RGBA_IMAGE if with_alpha else Gimp.ImageType.RGB_IMAGE
    image = source.image
    layer = Gimp.Layer.new(image, name, width, height, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    if group is None:
        image.insert_layer(layer, source.drawable.get_parent(), image.get_item_position(source.drawable))
    else:
        image.insert_layer(layer, group, 0)
    layer.set_offsets(source.offset_x, source.offset_y)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), _format_for(pixels, transfer == schema.LINEAR),
               pixels.tobytes())
    buffer.flush()
    layer.update(0, 0, width, height)
    return layer


def new_channel_from(source, name, values):
    """A canvas-sized channel whose part under ``source`` holds ``values`` (H, W); the rest is 0."""
    image = source.image
    color = Gegl.Color.new("black")
    channel = Gimp.Channel.new(image, name, image.get_width(), image.get_height(), 50.0, color)
    image.insert_channel(channel, None, len(image.get_channels()))  # below the others: map 0 stays first
    values = np.ascontiguousarray(values.reshape(values.shape[0], values.shape[1]))
    if values.shape != (source.height, source.width):
        raise ValueError("an adjustment map of %s does not fit a %dx%d layer" % (values.shape, source.width,
                                                                                 source.height))
    # Only the part of the layer that lies on the canvas can be stored in a channel.
    x0, y0 = max(0, source.offset_x), max(0, source.offset_y)
    x1 = min(image.get_width(), source.offset_x + source.width)
    y1 = min(image.get_height(), source.offset_y + source.height)
    if x1 > x0 and y1 > y0:
        part = np.ascontiguousarray(values[y0 - source.offset_y:y1 - source.offset_y,
                                           x0 - source.offset_x:x1 - source.offset_x])
        buffer = channel.get_buffer()
        buffer.set(Gegl.Rectangle.new(x0, y0, x1 - x0, y1 - y0), _format_for(part, True), part.tobytes())
        buffer.flush()
        channel.update(x0, y0, x1 - x0, y1 - y0)
    channel.set_visible(False)
    return channel


def _convert(array, dtype):
    """Alpha (or any coverage) from one sample type to another, by value range."""
    src, dst = np.dtype(array.dtype), np.dtype(dtype)
    if src == dst:
        return array
    unit = array.astype(np.float32) / (np.iinfo(src).max if src.kind == "u" else 1.0)
    if dst.kind == "u":
        return np.clip(np.rint(unit * np.iinfo(dst).max), 0, np.iinfo(dst).max).astype(dst)
    return unit.astype(dst)


def attach_parameters(item, parameters):
    """Attach what made a result as a persistent, undoable parasite ``semantic-enhance`` (JSON)."""
    import json
    data = json.dumps(parameters, sort_keys=True).encode("utf-8")
    item.attach_parasite(Gimp.Parasite.new("semantic-enhance", Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE,
                                           list(data)))
