import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from cnnarch.data import (
    EvalTransform,
    ImageTensors,
    Normalize,
    TensorLoader,
    TrainTransform,
    alternating_flips,
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


def test_reflect_pad_crop_equals_f_pad_reflect_at_the_crop_offset():
    x = _images(n=40, h=12, w=10)
    g = torch.Generator().manual_seed(2)
    # every offset of a 3-pixel padding, corners included
    dy, dx = torch.randint(0, 6 + 1, (40,), generator=g), torch.randint(0, 6 + 1, (40,), generator=g)
    dy[:2], dx[:2] = torch.tensor([0, 6]), torch.tensor([0, 6])
    flip = torch.rand(40, generator=g) < 0.5
    out = pad_crop(x, dy, dx, 10, padding=3, flip=flip, mode="reflect")
    assert out.dtype == torch.uint8 and out.shape == (40, 3, 10, 10)
    for i in range(40):
        padded = F.pad(x[i : i + 1].float(), (3, 3, 3, 3), mode="reflect")[0]
        ref = padded[:, dy[i] : dy[i] + 10, dx[i] : dx[i] + 10]
        assert torch.equal(out[i].float(), ref.flip(-1) if flip[i] else ref), i
    zeros = pad_crop(x, dy, dx, 10, padding=3)  # the default is still zero padding
    assert torch.equal(zeros[0, :, :3], torch.zeros(3, 3, 10, dtype=torch.uint8))
    with pytest.raises(ValueError, match="reflect padding by 10 needs images larger"):
        pad_crop(x, dy, dx, 10, padding=10, mode="reflect")
    with pytest.raises(ValueError, match="padding mode must be one of constant, reflect"):
        pad_crop(x, dy, dx, 10, padding=3, mode="wrap")
    with pytest.raises(ValueError, match="pad_mode"):
        TrainTransform(crop=8, padding=2, pad_mode="edge")


def test_train_transform_reflect_mode_uses_reflect_padding():
    x = _images(n=8, h=8, w=8)
    t = TrainTransform(crop=8, padding=2, flip=False, pad_mode="reflect")
    p = t.sample(8, (8, 8), torch.Generator().manual_seed(0))
    y = t.apply(x, p)
    for i in range(8):
        ref = F.pad(x[i : i + 1].float(), (2,) * 4, mode="reflect")[0] / 255
        torch.testing.assert_close(y[i], ref[:, p["dy"][i] : p["dy"][i] + 8, p["dx"][i] : p["dx"][i] + 8])


def _traced_flips(loader, data, epoch):
    """Per dataset index: was the image mirrored in ``epoch``? (labels carry the index)."""
    loader.set_epoch(epoch)
    flipped = torch.full((len(data.images),), -1)
    for x, y in loader:
        for img, i in zip(x.mul(255).round().to(torch.uint8), y.tolist(), strict=True):
            plain = data.images[i]
            assert torch.equal(img, plain) or torch.equal(img, plain.flip(-1))
            flipped[i] = int(torch.equal(img, plain.flip(-1)))
    assert (flipped >= 0).all()  # every image seen once
    return flipped.bool()


def test_alternating_flips_mirror_every_image_exactly_once_in_two_consecutive_epochs():
    n = 64
    g = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (n, 3, 5, 5), dtype=torch.uint8, generator=g)
    data = ImageTensors(images, torch.arange(n), [str(i) for i in range(n)])
    assert not any(torch.equal(im, im.flip(-1)) for im in images)  # a flip is always visible
    t = TrainTransform(flip=True, alternate_flip=True)
    loader = TensorLoader(data, 16, seed=9, transform=t)
    flips = [_traced_flips(loader, data, e) for e in range(4)]
    assert 16 < int(flips[0].sum()) < 48  # a random half in epoch 0
    for e in range(3):
        assert torch.equal(flips[e] ^ flips[e + 1], torch.ones(n, dtype=torch.bool)), e
    # nothing but (seed, epoch) decides: a fresh loader resumed at epoch 3 flips the same images
    assert torch.equal(_traced_flips(TensorLoader(data, 16, seed=9, transform=t), data, 3), flips[3])
    assert not torch.equal(_traced_flips(TensorLoader(data, 16, seed=10, transform=t), data, 0), flips[0])
    # the function itself: index order does not matter, odd epochs invert
    order = torch.randperm(n, generator=g)
    assert torch.equal(
        alternating_flips(order, n, 2, seed=9), alternating_flips(torch.arange(n), n, 0, 9)[order]
    )
    assert torch.equal(alternating_flips(order, n, 5, seed=9), ~alternating_flips(order, n, 0, seed=9))
    with pytest.raises(ValueError, match="alternate_flip=True needs flip=True"):
        TrainTransform(flip=False, alternate_flip=True)


def test_random_flips_are_unchanged_by_default():
    x = _images(n=32, h=8, w=8)
    t = TrainTransform(crop=8, padding=2)
    p = t.sample(32, (8, 8), torch.Generator().manual_seed(5), epoch=1, index=torch.arange(32), seed=3)
    g = torch.Generator().manual_seed(5)  # the numbers drawn before these options existed, in that order
    assert torch.equal(p["dy"], torch.randint(0, 5, (32,), generator=g))
    assert torch.equal(p["dx"], torch.randint(0, 5, (32,), generator=g))
    assert torch.equal(p["flip"], torch.rand(32, generator=g) < 0.5)
    assert t.pad_mode == "constant" and not t.alternate_flip and t(x).shape == (32, 3, 8, 8)
