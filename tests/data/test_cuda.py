"""The batched data path on a GPU gives what it gives on the CPU (runs where CUDA is present)."""

import pytest
import torch

from cnnarch.data import (
    EvalTransform,
    ImageTensors,
    Normalize,
    StreamLoader,
    TensorLoader,
    TrainTransform,
    load_image_folder,
    rgb_pca,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _data(n=300):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    return ImageTensors(images, torch.arange(n) % 10, [str(i) for i in range(10)])


def test_tensor_loader_on_cuda_matches_cpu():
    data = _data()
    norm = Normalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.25))
    t = TrainTransform(crop=16, padding=2, lighting_std=0.1, pca=rgb_pca(data.images), normalize=norm)
    cpu = TensorLoader(data, 64, seed=4, transform=t)
    gpu = TensorLoader(data, 64, seed=4, transform=t, device="cuda")
    for (x, y), (xc, yc) in zip(cpu, gpu, strict=True):
        assert xc.is_cuda and torch.equal(y, yc.cpu())
        torch.testing.assert_close(xc.cpu(), x, rtol=1e-5, atol=1e-5)


def test_ten_crop_and_bf16_channels_last_on_cuda():
    x = _data(8).images
    ev = EvalTransform(crop=12, padding=2, ten_crop=True)
    torch.testing.assert_close(ev(x.cuda()).cpu(), ev(x))
    n = Normalize(dtype=torch.bfloat16, channels_last=True)
    y = n(x.cuda())
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y.cpu(), n(x))


def test_stream_loader_delivers_to_cuda(tmp_path, write_tree, cache_dir):
    write_tree(tmp_path / "tree", classes=("a", "b"), per_class=6, size=(8, 8))
    t = TrainTransform(crop=8, padding=1)
    cpu = list(TensorLoader(load_image_folder(tmp_path / "tree", progress=False), 4, transform=t))
    gpu = list(StreamLoader(tmp_path / "tree", 4, load_size=8, transform=t, device="cuda", workers=1))
    for (x, y), (xg, yg) in zip(cpu, gpu, strict=True):
        assert xg.is_cuda and torch.equal(y, yg.cpu())
        torch.testing.assert_close(xg.cpu(), x)
