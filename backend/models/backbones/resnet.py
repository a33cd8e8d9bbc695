"""ResNet-50 (He et al. 2016, torchvision's v1.5: stride in the 3x3 conv), SA-AdjustNet's backbone.

No ResNet-50 ImageNet weights can be had here, so this loads a *user-supplied* torchvision ``resnet50``
state_dict (``.pth`` read with ``weights_only=True``, or ``.safetensors``) strictly, key names as
torchvision's (``conv1``, ``bn1``, ``layer1.0.downsample.0`` ..., ``fc``). Input: ImageNet mean/std
(``vgg.preprocess_imagenet``).

``ResNet50.pyramid(x)`` -> {2: stem (64), 4: layer1 (256), 8: layer2 (512), 16: layer3 (1024),
32: layer4 (2048)}; ``output_stride`` 8 or 16 dilates the last stages instead of striding (DeepLab).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .vgg import _load_state_dict

LAYERS = ((64, 3), (128, 4), (256, 6), (512, 3))  # (width, blocks); output channels are 4x width
EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, in_channels, width, stride=1, dilation=1, downsample=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * EXPANSION)
        self.downsample = (nn.Sequential(nn.Conv2d(in_channels, width * EXPANSION, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(width * EXPANSION)) if downsample else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet50(nn.Module):
    def __init__(self, num_classes=1000, output_stride=32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError("output_stride must be 8, 16 or 32, got %r" % (output_stride,))
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        channels, stride_so_far, dilation = 64, 4, 1
        for index, (width, blocks) in enumerate(LAYERS):
            stride = 1 if index == 0 else 2
            first_dilation = dilation
            if stride == 2 and stride_so_far >= output_stride:
                stride, dilation = 1, dilation * 2
            stride_so_far *= stride
            layer = [Bottleneck(channels, width, stride, first_dilation, downsample=True)]
            layer += [Bottleneck(width * EXPANSION, width, 1, dilation) for _ in range(blocks - 1)]
            setattr(self, "layer%d" % (index + 1), nn.Sequential(*layer))
            channels = width * EXPANSION
        self.fc = nn.Linear(channels, num_classes)

    def pyramid(self, x):
        stem = F.relu(self.bn1(self.conv1(x)))
        features = {2: stem}
        x = F.max_pool2d(stem, 3, stride=2, padding=1)
        for index, stride in enumerate((4, 8, 16, 32)):
            x = getattr(self, "layer%d" % (index + 1))(x)
            features[stride] = x
        return features

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.pyramid(x)[32], 1), 1))


def load_resnet50_torchvision(state_dict_or_path, output_stride=32, device="cpu"):
    """Build ResNet-50 and load a torchvision resnet50 state_dict strictly; eval mode."""
    state = _load_state_dict(state_dict_or_path)
    classes = state["fc.weight"].shape[0] if "fc.weight" in state else 1000
    net = ResNet50(num_classes=classes, output_stride=output_stride)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()
