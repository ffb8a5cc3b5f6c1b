import pytest
import torch

from cnnarch.data import (
    CorruptImageError,
    EvalTransform,
    ImageTensors,
    StreamLoader,
    TensorLoader,
    TrainTransform,
    val_split,
)


def _data(n=50, classes=5, hw=6):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, hw, hw), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % classes
    return ImageTensors(images, labels, [f"c{i}" for i in range(classes)])


def _epoch(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_every_image_once_per_epoch_and_reproducible():
    data = _data()
    # Tag each image by its index in the first pixel so batches can be traced back.
    data.images[:, 0, 0, 0] = torch.arange(50, dtype=torch.uint8)
    loader = TensorLoader(data, 8, seed=3)
    assert len(loader) == 7 and loader.num_images == 50
    first = _epoch(loader, 0)
    seen = torch.cat([x[:, 0, 0, 0] for x, _ in first]).long()
    assert sorted(seen.tolist()) == list(range(50))
    assert torch.equal(torch.cat([y for _, y in first]), data.labels[seen])
    again = _epoch(TensorLoader(data, 8, seed=3), 0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    other = torch.cat([x[:, 0, 0, 0] for x, _ in _epoch(loader, 1)])
    assert not torch.equal(seen, other.long())
    assert torch.equal(seen, torch.randperm(50, generator=torch.Generator().manual_seed(3)))  # seed + epoch


def test_drop_last_and_no_shuffle():
    data = _data()
    loader = TensorLoader(data, 8, shuffle=False, drop_last=True)
    batches = _epoch(loader, 0)
    assert len(loader) == len(batches) == 6 and all(len(y) == 8 for _, y in batches)
    assert torch.equal(torch.cat([y for _, y in batches]), data.labels[:48])


@pytest.mark.parametrize("n", [50, 53])
@pytest.mark.parametrize("airbench", [False, True])
def test_shards_of_two_ranks_make_the_single_process_batch(n, airbench):
    data = _data(n=n)
    t = TrainTransform(crop=6, padding=2)
    if airbench:
        t = TrainTransform(crop=6, padding=2, pad_mode="reflect", alternate_flip=True)
    single = _epoch(TensorLoader(data, 8, seed=1, transform=t), 2)
    r0 = _epoch(TensorLoader(data, 4, seed=1, transform=t, rank=0, world_size=2), 2)
    r1 = _epoch(TensorLoader(data, 4, seed=1, transform=t, rank=1, world_size=2), 2)
    assert len(r0) == len(r1) == len(single)
    for (x, y), (x0, y0), (x1, y1) in zip(single, r0, r1, strict=True):
        # rank r holds positions r, r + 2, ... of the global batch, augmented identically
        both = torch.stack([x0, x1], 1).flatten(0, 1)[: len(x)]
        assert torch.equal(both, x) and torch.equal(torch.stack([y0, y1], 1).flatten()[: len(y)], y)


def test_rank_must_be_valid():
    with pytest.raises(ValueError, match="rank"):
        TensorLoader(_data(), 4, rank=2, world_size=2)


def test_val_split_is_seeded_disjoint_and_stratified():
    data = _data(n=100, classes=4)
    data.images[:, 0, 0, 0] = torch.arange(100, dtype=torch.uint8)
    train, val = val_split(data, 0.2, seed=7)
    assert len(train) == 80 and len(val) == 20
    assert val.class_counts().tolist() == [5, 5, 5, 5]
    ids_t, ids_v = set(train.images[:, 0, 0, 0].tolist()), set(val.images[:, 0, 0, 0].tolist())
    assert not ids_t & ids_v and len(ids_t | ids_v) == 100
    again = val_split(data, 20, seed=7)[1]
    assert torch.equal(again.images, val.images)
    assert not torch.equal(val_split(data, 0.2, seed=8)[1].images, val.images)
    with pytest.raises(ValueError, match="val_split"):
        val_split(data, 1.5)
    with pytest.raises(ValueError, match="val_split"):
        val_split(data, 100)
    # Uneven classes (sizes 40, 30, 20, 10) and a count: exactly that many, in proportion.
    uneven = ImageTensors(data.images, torch.tensor([0] * 40 + [1] * 30 + [2] * 20 + [3] * 10), data.classes)
    _, v = val_split(uneven, 15)
    assert len(v) == 15 and v.class_counts().tolist() == [6, 5, 3, 1]  # shares 6, 4.5, 3, 1.5 -> remainders


def test_stream_loader_matches_tensor_loader_on_same_images(tmp_path, write_tree, cache_dir):
    from cnnarch.data import load_image_folder

    write_tree(tmp_path / "tree", classes=("a", "b", "c"), per_class=5, size=(8, 8))
    data = load_image_folder(tmp_path / "tree", progress=False)
    t = TrainTransform(crop=6, padding=1)
    ours = _epoch(TensorLoader(data, 4, seed=2, transform=t), 1)
    stream = StreamLoader(tmp_path / "tree", 4, load_size=8, seed=2, transform=t, workers=1)
    streamed = _epoch(stream, 1)
    assert stream.classes == data.classes
    for (x, y), (xs, ys) in zip(ours, streamed, strict=True):
        assert torch.equal(x, xs) and torch.equal(y, ys)
    ev = _epoch(
        StreamLoader(tmp_path / "tree", 16, load_size=8, shuffle=False, transform=EvalTransform(), workers=0),
        0,
    )
    torch.testing.assert_close(ev[0][0], data.images.float() / 255)


def test_stream_loader_corrupt_file(tmp_path, write_tree, jpeg_bytes):
    write_tree(tmp_path, classes=("a", "b"), per_class=3, size=(8, 8))
    (tmp_path / "b" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(CorruptImageError, match=r"b/bad\.jpg.*skip_corrupt"):
        list(StreamLoader(tmp_path, 4, load_size=8, workers=0))
    loader = StreamLoader(tmp_path, 4, load_size=8, workers=0, skip_corrupt=True)
    assert sum(len(y) for _, y in loader) == 6 and loader.skipped == 1


def test_stream_loader_split_and_limit(tmp_path, write_tree):
    write_tree(tmp_path / "train", classes=("a", "b", "c"), per_class=4, size=(8, 8))
    loader = StreamLoader(tmp_path, 16, split="train", load_size=8, shuffle=False, limit=5, workers=0)
    (x, y), *rest = list(loader)
    assert not rest and x.dtype == torch.uint8 and y.tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(FileNotFoundError, match="expected root/<split>/<class>"):
        StreamLoader(tmp_path, 16, split="val")


def test_unpadded_shards_give_every_image_once():
    data = _data(n=53)
    data.images[:, 0, 0, 0] = torch.arange(53, dtype=torch.uint8)
    seen = []
    for rank in range(3):
        loader = TensorLoader(data, 5, shuffle=False, rank=rank, world_size=3, pad=False)
        batches = _epoch(loader, 0)
        assert len(loader) == len(batches) and loader.num_images == len(range(rank, 53, 3))
        seen += torch.cat([x[:, 0, 0, 0] for x, _ in batches]).tolist()
    assert sorted(seen) == list(range(53))
    padded = [TensorLoader(data, 5, shuffle=False, rank=r, world_size=3).num_images for r in range(3)]
    assert padded == [18, 18, 18]
