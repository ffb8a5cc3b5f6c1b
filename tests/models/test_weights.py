"""Weights by name, file or URL (tests make every file themselves; nothing reaches the internet)."""

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnarch.models import create_model
from cnnarch.models.weights import WeightsMeta, load_weights, save_weights


def seeded_tv(name, **kw):
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, **kw).eval()


def same_logits(ours, theirs, size=64, ours_x=None):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.allclose(ours.eval()(x if ours_x is None else ours_x(x)), theirs(x), atol=1e-5)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_plain_state_dict_file_gives_torchvisions_logits(tmp_path):
    tv = seeded_tv("resnet18", num_classes=7)
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    ours = create_model("resnet18", weights=tmp_path / "r18.pth")
    assert ours.weights_meta.num_classes == 7 and ours.replaced_head == []
    assert same_logits(ours, tv)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "arch": "resnet18"},  # timm's train.py
        lambda sd: {"model": sd, "optimizer": {}, "epoch": 3},  # torchvision's reference scripts
        lambda sd: {"module." + k: v for k, v in sd.items()},  # saved from DistributedDataParallel
        lambda sd: {"_orig_mod." + k: v for k, v in sd.items()},  # saved from torch.compile
    ],
    ids=["timm", "torchvision-reference", "ddp", "compiled"],
)
def test_checkpoint_layouts(tmp_path, wrap):
    tv = seeded_tv("alexnet", num_classes=5)
    torch.save(wrap(tv.state_dict()), tmp_path / "w.pth")
    assert same_logits(create_model("alexnet_tv", weights=str(tmp_path / "w.pth")), tv, size=96)


def test_safetensors_with_and_without_metadata(tmp_path):
    tv = seeded_tv("vgg11", num_classes=4)
    save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, str(tmp_path / "bare.safetensors"))
    assert same_logits(create_model("vgg11", weights=tmp_path / "bare.safetensors"), tv, size=32)
    meta = WeightsMeta(num_classes=4, classes=("a", "b", "c", "d"), resize=36, crop=32, mean=(0.1,) * 3)
    save_weights(
        create_model("vgg11", weights=tmp_path / "bare.safetensors"), meta, tmp_path / "m.safetensors"
    )
    # written whole or not at all, readable by others like any file (safetensors' own writer makes
    # the file private)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob("*.tmp"))
    loaded = create_model("vgg11", weights=tmp_path / "m.safetensors")
    assert loaded.weights_meta.classes == ("a", "b", "c", "d") and loaded.weights_meta.crop == 32
    assert loaded.weights_meta.mean == (0.1, 0.1, 0.1) and same_logits(loaded, tv, size=32)


def test_cnnarch_checkpoint_carries_classes_and_normalisation(tmp_path):
    net = create_model("resnet20", num_classes=3)
    ckpt = {
        "format": "cnnarch-checkpoint/1",
        "model_name": "resnet20",
        "num_classes": 3,
        "classes": ["cat", "dog", "ship"],
        "data_info": {
            "mean": [0.4, 0.5, 0.6],
            "std": [0.2, 0.2, 0.3],
            "image_shape": [3, 32, 32],
            "crop": 32,
        },
        "model": net.state_dict(),
    }
    torch.save(ckpt, tmp_path / "best.pt")
    loaded = create_model("resnet20", weights=tmp_path / "best.pt")
    m = loaded.weights_meta
    assert (m.classes, m.mean, m.std, m.crop, m.resize) == (
        ("cat", "dog", "ship"),
        (0.4, 0.5, 0.6),
        (0.2, 0.2, 0.3),
        32,
        32,
    )
    assert same_logits(loaded, net.eval(), size=32)


def test_crafted_pickle_is_refused_without_running(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    # protocol 2, torch.save's: the weights-only loader refuses it without a warning about the protocol
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"fc.weight": Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match="refused by the weights-only loader"):
        create_model("resnet18", weights=tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_weights_of_another_network_are_a_clear_error(tmp_path):
    torch.save(seeded_tv("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="do not fit resnet34"):
        create_model("resnet34", weights=tmp_path / "r18.pth")


def test_new_class_count_replaces_the_head_only(tmp_path):
    tv = seeded_tv("resnet18")
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    ours = create_model("resnet18", weights=tmp_path / "r18.pth", num_classes=3)
    assert ours.replaced_head == ["fc"] and ours.fc.out_features == 3 and ours.weights_meta.num_classes == 3
    assert torch.equal(ours.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    g = create_model("googlenet", num_classes=10)
    torch.save(g.state_dict(), tmp_path / "g.pth")
    g2 = create_model("googlenet", weights=tmp_path / "g.pth", num_classes=2)
    assert sorted(g2.replaced_head) == ["aux1.fc2", "aux2.fc2", "fc"]


def test_file_url_is_fetched_into_torch_hub_cache_then_works_offline(tmp_path, torch_home):
    tv = seeded_tv("resnet18", num_classes=6)
    src = tmp_path / "served" / "r18-custom.pth"
    src.parent.mkdir()
    torch.save(tv.state_dict(), src)
    ours = create_model("resnet18", weights=src.as_uri())
    key = hashlib.sha256(src.as_uri().encode()).hexdigest()[:16]  # the URL's hash keys the cache
    assert (torch_home / f"{key}-r18-custom.pth").is_file() and src.as_uri() in ours.weights_meta.source
    src.unlink()  # the server is gone: the cache answers
    assert same_logits(create_model("resnet18", weights=src.as_uri()), tv)


def _cache_torchvision_file(torch_home: Path, weights_enum, model):
    torch_home.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), torch_home / Path(weights_enum.url).name)


def test_torchvision_weight_names_use_torchvisions_cache(torch_home):
    enum = torchvision.models.ResNet18_Weights
    tv = seeded_tv("resnet18")
    _cache_torchvision_file(torch_home, enum.IMAGENET1K_V1, tv)
    for kw in ({"weights": "IMAGENET1K_V1"}, {"weights": "DEFAULT"}, {"pretrained": True}):
        ours = create_model("resnet18", **kw)
        m = ours.weights_meta
        assert m.classes == tuple(enum.IMAGENET1K_V1.meta["categories"]) and len(m.classes) == 1000
        assert (m.resize, m.crop, m.mean) == (256, 224, (0.485, 0.456, 0.406))
        assert "ResNet18_Weights.IMAGENET1K_V1" in m.source
        assert same_logits(ours, tv)


def test_googlenet_weights_keep_torchvisions_transform_input_as_preprocessing(torch_home):
    enum = torchvision.models.GoogLeNet_Weights
    tv = seeded_tv("googlenet", aux_logits=True, transform_input=True, init_weights=True)
    _cache_torchvision_file(torch_home, enum.IMAGENET1K_V1, tv)
    ours = create_model("googlenet_tv", weights="IMAGENET1K_V1")
    m = ours.weights_meta
    imagenet = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    mine = torch.tensor(m.mean).view(1, 3, 1, 1), torch.tensor(m.std).view(1, 3, 1, 1)
    # torchvision's input is normalised with ImageNet's statistics; ours with the weights' own
    pixels = lambda x: x * imagenet[1] + imagenet[0]  # noqa: E731
    assert same_logits(ours, tv, size=96, ours_x=lambda x: (pixels(x) - mine[0]) / mine[1])


def test_unknown_weight_name_lists_what_exists():
    with pytest.raises(ValueError) as e:
        create_model("resnet20", weights="IMAGENET1K_V1")
    msg = str(e.value)
    assert (
        "resnet20 has no weights 'IMAGENET1K_V1'" in msg
        and "resnet50 (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT)" in msg
    )
    with pytest.raises(ValueError, match="resnet18 has: IMAGENET1K_V1, DEFAULT"):
        load_weights("resnet18", "cifar10")
