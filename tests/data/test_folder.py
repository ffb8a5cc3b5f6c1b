import os
import time

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.v2.functional as TF

from cnnarch.data import CorruptImageError, load_image_folder, scan_image_folder


def test_decodes_tree_exactly_and_in_imagefolder_order(tmp_path, cache_dir, write_tree):
    arrays = write_tree(tmp_path / "tree" / "train", classes=("dog", "cat", "bird"), per_class=4)
    data = load_image_folder(tmp_path / "tree", "train", progress=False)
    ref = torchvision.datasets.ImageFolder(str(tmp_path / "tree" / "train"))
    assert data.classes == ref.classes == ["bird", "cat", "dog"]
    assert data.images.shape == (12, 3, 6, 8) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [t for _, t in ref.samples]
    for img, rel, (path, _) in zip(data.images, data.paths, ref.samples, strict=True):
        assert path.endswith(rel)
        assert torch.equal(img, torch.from_numpy(arrays[rel]).permute(2, 0, 1))


def test_cache_is_reused_then_rebuilt_when_a_file_changes(tmp_path, cache_dir, write_tree):
    root = tmp_path / "tree"
    arrays = write_tree(root, per_class=2)
    first = load_image_folder(root, progress=False)
    files = list((cache_dir / "folders").glob("*.pt"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = load_image_folder(root, progress=False)
    assert torch.equal(first.images, again.images)
    assert files[0].stat().st_mtime_ns == mtime  # read, not rewritten

    # Replace one image with different pixels (and a different mtime): the stale cache must not be used.
    rel = "dog/0001.png"
    new = 255 - arrays[rel]
    from PIL import Image

    Image.fromarray(new).save(root / rel)
    os.utime(root / rel, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_image_folder(root, progress=False)
    assert torch.equal(changed.images[changed.paths.index(rel)], torch.from_numpy(new).permute(2, 0, 1))
    assert len(list((cache_dir / "folders").glob("*.pt"))) == 1  # the stale file was removed
    assert not list((cache_dir / "folders").glob("*.tmp"))


def test_corrupt_and_truncated_images_name_their_file(tmp_path, cache_dir, write_tree, jpeg_bytes):
    root = tmp_path / "tree"
    write_tree(root, per_class=3)
    good = jpeg_bytes(np.full((6, 8, 3), 100, np.uint8))
    (root / "cat" / "trunc.jpg").write_bytes(good[: len(good) // 2])
    (root / "dog" / "garbage.jpg").write_bytes(b"this is not a jpeg" * 10)
    with pytest.raises(CorruptImageError, match=r"cat/trunc\.jpg.*and 1 more.*skip_corrupt") as e:
        load_image_folder(root, progress=False)
    assert e.value.path.endswith("cat/trunc.jpg")
    data = load_image_folder(root, skip_corrupt=True, progress=False)
    assert len(data) == 6 and sorted(data.skipped) == ["cat/trunc.jpg", "dog/garbage.jpg"]
    assert data.class_counts().tolist() == [3, 3]
    # The cache built with skipping must not hide the bad files from a strict load.
    with pytest.raises(CorruptImageError, match="trunc.jpg"):
        load_image_folder(root, progress=False)


def test_parallel_decode_equals_serial(tmp_path, cache_dir, write_tree):
    root = tmp_path / "tree"
    write_tree(root, classes=("a", "b"), per_class=300, size=(4, 4))  # > one 256-image chunk per worker
    serial = load_image_folder(root, workers=1, use_cache=False, progress=False)
    parallel = load_image_folder(root, workers=2, use_cache=False, progress=False)
    assert torch.equal(serial.images, parallel.images) and torch.equal(serial.labels, parallel.labels)
    assert not (cache_dir / "folders").exists()


def test_layout_errors_say_what_was_expected(tmp_path, cache_dir, jpeg_bytes):
    with pytest.raises(FileNotFoundError, match="does not exist; expected root/<split>/<class>"):
        load_image_folder(tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-directories; expected"):
        load_image_folder(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.jpg").write_bytes(jpeg_bytes(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ValueError, match="directly inside it.*not in class sub-directories"):
        load_image_folder(flat)
    (tmp_path / "noimg" / "cat").mkdir(parents=True)
    (tmp_path / "noimg" / "cat" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"noimg/cat has no images"):
        load_image_folder(tmp_path / "noimg")


def test_mixed_sizes_need_size_and_size_resizes(tmp_path, cache_dir, write_tree):
    root = tmp_path / "tree"
    write_tree(root, classes=("a",), per_class=2, size=(8, 8))
    write_tree(root, classes=("b",), per_class=2, size=(12, 10))
    with pytest.raises(ValueError, match="differ in size.*size=N"):
        load_image_folder(root, progress=False)
    data = load_image_folder(root, size=4, progress=False)
    assert data.images.shape == (4, 3, 4, 4)
    from PIL import Image

    with Image.open(root / "b" / "0000.png") as img:
        expected = TF.pil_to_tensor(TF.center_crop(TF.resize(img, 4), 4))
    assert torch.equal(data.images[2], expected)
    with pytest.raises(ValueError, match="larger than max_side=6.*StreamLoader"):
        load_image_folder(root, size=8, max_side=6, progress=False)


def test_limit_spreads_over_classes(tmp_path, write_tree):
    write_tree(tmp_path, classes=("a", "b", "c"), per_class=4, size=(2, 2))
    classes, files, labels = scan_image_folder(tmp_path, limit=5)
    assert labels == [0, 0, 1, 1, 2]
    assert files == ["a/0000.png", "a/0001.png", "b/0000.png", "b/0001.png", "c/0000.png"]


def test_shared_cifar_slice_matches_torchvision(cifar_jpeg_root, cache_dir):
    data = load_image_folder(cifar_jpeg_root, "test", limit=200, progress=False)
    ref = torchvision.datasets.ImageFolder(str(cifar_jpeg_root / "test"))
    assert data.classes == ref.classes and data.class_counts().tolist() == [20] * 10
    index = {p: i for i, (p, _) in enumerate(ref.samples)}
    for k in (0, 57, 199):
        img, target = ref[index[str(cifar_jpeg_root / "test" / data.paths[k])]]
        assert target == data.labels[k]
        assert torch.equal(data.images[k], TF.pil_to_tensor(img))
    x, y = data.numpy()
    assert x.shape == (200, 32, 32, 3) and np.array_equal(x[5], data.images[5].permute(1, 2, 0).numpy())


def test_interrupted_cache_write_leaves_the_old_cache_and_no_partial_file(
    tmp_path, cache_dir, write_tree, monkeypatch
):
    root = tmp_path / "tree"
    write_tree(root, per_class=2)
    load_image_folder(root, progress=False)
    (old,) = (cache_dir / "folders").glob("*.pt")
    os.utime(root / "cat" / "0000.png", ns=(1, 1))  # stale now: the next load rebuilds

    def crash(obj, f):
        f.write(b"half a tensor")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root, progress=False)
    assert list((cache_dir / "folders").iterdir()) == [old]
    monkeypatch.undo()
    assert torch.load(old, weights_only=True)["images"].shape == (4, 3, 6, 8)


def test_cifar10_entry_reads_the_shared_jpeg_copy(cifar_jpeg_root, cache_dir):
    from cnnarch.data import cifar10

    data = cifar10(cifar_jpeg_root, "test", limit=30, progress=False)
    assert len(data) == 30 and data.classes[0] == "airplane" and data.image_shape == (3, 32, 32)


def test_split_with_other_classes_is_refused(tmp_path, cache_dir, write_tree):
    write_tree(tmp_path / "train", classes=("cat", "dog"), per_class=1)
    write_tree(tmp_path / "test", classes=("cat", "dgo"), per_class=1)
    train = load_image_folder(tmp_path, "train", progress=False)
    with pytest.raises(ValueError, match=r"missing: \['dog'\], extra: \['dgo'\]"):
        load_image_folder(tmp_path, "test", classes=train.classes, progress=False)
