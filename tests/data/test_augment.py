import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from cnnarch.data import (
    EvalTransform,
    Normalize,
    TrainTransform,
    channel_stats,
    make_transforms,
    pad_crop,
    rgb_pca,
    ten_crop,
)


def _images(n=16, c=3, h=12, w=10, seed=0):
    return torch.randint(
        0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_pad_crop_equals_slicing_the_padded_image_and_flip_equals_torch_flip():
    x = _images()
    g = torch.Generator().manual_seed(1)
    dy, dx = torch.randint(0, 8 + 1, (16,), generator=g), torch.randint(0, 6 + 1, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    out = pad_crop(x, dy, dx, 8, padding=2, flip=flip)
    assert out.dtype == torch.uint8 and out.shape == (16, 3, 8, 8)
    for i in range(16):
        ref = F.pad(x[i], (2, 2, 2, 2))[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert torch.equal(out[i], torch.flip(ref, [-1]) if flip[i] else ref)
    assert 0 < flip.sum() < 16  # both branches were exercised
    with pytest.raises(ValueError, match="leaves the"):
        pad_crop(x, dy + 9, dx, 8, padding=2)


def test_train_transform_is_seeded_and_composes_the_steps():
    x = _images(n=32, h=8, w=8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    vals, vecs = torch.tensor([0.05, 0.01, 0.002]), torch.linalg.qr(torch.randn(3, 3))[0]
    t = TrainTransform(
        crop=8, padding=2, flip=True, lighting_std=0.1, pca=(vals, vecs), normalize=Normalize(mean, std)
    )
    a = t(x, torch.Generator().manual_seed(5))
    b = t(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, t(x, torch.Generator().manual_seed(6)))
    # The same, computed image by image with plain torch ops from the same random numbers.
    p = t.sample(32, (8, 8), torch.Generator().manual_seed(5))
    for i in range(32):
        img = F.pad(x[i], (2,) * 4)[:, p["dy"][i] : p["dy"][i] + 8, p["dx"][i] : p["dx"][i] + 8]
        img = (torch.flip(img, [-1]) if p["flip"][i] else img).double() / 255
        img = img + (vecs.double() @ (p["alpha"][i].double() * vals.double()))[:, None, None]
        img = (img - torch.tensor(mean, dtype=torch.float64)[:, None, None]) / torch.tensor(std).double()[
            :, None, None
        ]
        torch.testing.assert_close(a[i].double(), img, rtol=1e-5, atol=1e-5)
    assert p["alpha"].std().item() == pytest.approx(0.1, rel=0.3)


def test_normalize_dtype_and_channels_last():
    x = _images(n=4, h=5, w=5)
    n = Normalize((0.1, 0.2, 0.3), (0.5, 0.5, 0.5), dtype=torch.bfloat16, channels_last=True)
    y = n(x)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    ref = TF.normalize(x.float() / 255, [0.1, 0.2, 0.3], [0.5, 0.5, 0.5])
    torch.testing.assert_close(y.float(), ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(Normalize((0.1, 0.2, 0.3), (0.5, 0.5, 0.5))(x), ref)


def test_ten_crop_equals_torchvision():
    x = _images(n=3, h=11, w=9)
    ours = ten_crop(x, 6)
    assert ours.shape == (3, 10, 3, 6, 6)
    for i in range(3):
        ref = TF.ten_crop(x[i], [6, 6])
        for k in range(10):
            assert torch.equal(ours[i, k], ref[k]), k
    ev = EvalTransform(crop=6, ten_crop=True)(x)
    torch.testing.assert_close(ev, ours.float() / 255)
    centre = EvalTransform(crop=6)(x)
    torch.testing.assert_close(centre, TF.center_crop(x, [6, 6]).float() / 255)
    padded = EvalTransform(crop=11, padding=2, ten_crop=True)(x)
    torch.testing.assert_close(padded, ten_crop(F.pad(x, (2,) * 4), 11).float() / 255)


def test_rgb_pca_matches_numpy_eigh_and_channel_stats_match_numpy():
    g = torch.Generator().manual_seed(3)
    base = torch.randint(0, 200, (40, 1, 6, 6), generator=g)
    x = torch.cat([base, base // 2 + 20, torch.randint(0, 256, (40, 1, 6, 6), generator=g)], 1).to(
        torch.uint8
    )
    vals, vecs = rgb_pca(x, chunk=7)  # several chunks
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).numpy().astype(np.float64) / 255
    ref_vals, ref_vecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
    np.testing.assert_allclose(vals.numpy(), ref_vals[::-1], rtol=1e-5)
    for i in range(3):  # eigenvectors are defined up to sign
        v, r = vecs[:, i].double().numpy(), ref_vecs[:, ::-1][:, i]
        np.testing.assert_allclose(v * np.sign(v @ r), r, atol=1e-5)
    mean, std = channel_stats(x, chunk=9)
    np.testing.assert_allclose(mean.numpy(), pixels.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), pixels.std(0), rtol=1e-5)
    with pytest.raises(ValueError, match="RGB"):
        rgb_pca(x[:, :1])


def test_lighting_needs_pca():
    with pytest.raises(ValueError, match="rgb_pca"):
        TrainTransform(lighting_std=0.1)


def test_make_transforms_uses_training_set_statistics():
    x = _images(n=20, h=8, w=8)
    train_t, eval_t = make_transforms(x, crop=8, padding=1, lighting_std=0.1, eval_crop=6, ten_crop=True)
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).double() / 255
    torch.testing.assert_close(
        torch.as_tensor(train_t.normalize.mean).double(), pixels.mean(0), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        eval_t.normalize.std.double(), pixels.std(0, correction=0), rtol=1e-5, atol=1e-6
    )
    assert train_t.pca is not None and eval_t(x).shape == (20, 10, 3, 6, 6)
    # normalised training output has about zero mean and unit std per channel
    y = eval_t(x)
    assert y.mean(dim=(0, 1, 3, 4)).abs().max() < 0.1


def test_grayscale_batches_keep_one_channel():
    x = _images(n=4, c=1, h=6, w=6)
    y = TrainTransform(crop=6, padding=1)(x, torch.Generator().manual_seed(0))
    assert y.shape == (4, 1, 6, 6) and 0 <= y.min() and y.max() <= 1
