import functools
import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from cnnarch.data import (
    DatasetNotFoundError,
    DownloadError,
    cifar10,
    cifar100,
    download,
    fashion_mnist,
    load_dataset,
    mnist,
    read_idx,
)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(rng, n, labels_key=b"labels", n_classes=10):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    out = {b"batch_label": b"x", b"data": data, b"filenames": [b"f%d.png" % i for i in range(n)]}
    if labels_key == b"labels":
        out[b"labels"] = [int(x) for x in rng.integers(0, n_classes, n)]
    else:
        out[b"fine_labels"] = [int(x) for x in rng.integers(0, 100, n)]
        out[b"coarse_labels"] = [int(x) for x in rng.integers(0, 20, n)]
    return out


def make_cifar10_tarball(path, per_batch=4, seed=0):
    """A tarball with the official layout (cifar-10-batches-py/data_batch_1..5, test_batch,
    batches.meta), protocol-2 pickles with bytes keys like the published Python 2 files."""
    rng = np.random.default_rng(seed)
    files = {f"data_batch_{i}": _batch(rng, per_batch) for i in range(1, 6)}
    files["test_batch"] = _batch(rng, per_batch)
    files["batches.meta"] = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in files.items():
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return files, hashlib.md5(path.read_bytes()).hexdigest()


def expected_images(batches):
    """Official format, written out: row i is 1024 red, then green, then blue bytes, each row-major 32x32."""
    data = np.concatenate([b[b"data"] for b in batches])
    out = np.empty((len(data), 3, 32, 32), np.uint8)
    for c in range(3):
        for y in range(32):
            out[:, c, y, :] = data[:, c * 1024 + y * 32 : c * 1024 + y * 32 + 32]
    return torch.from_numpy(out)


@pytest.fixture
def http_root(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_cifar10_downloads_over_http_checks_md5_and_reads_official_format(http_root, tmp_path, monkeypatch):
    www, base = http_root
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    files, md5 = make_cifar10_tarball(www / "cifar-10-python.tar.gz")
    cache = tmp_path / "cache"
    train = cifar10(split="train", cache_dir=cache, url=base + "cifar-10-python.tar.gz", md5=md5)
    assert train.classes == CIFAR10_CLASSES and train.images.shape == (20, 3, 32, 32)
    batches = [files[f"data_batch_{i}"] for i in range(1, 6)]
    assert torch.equal(train.images, expected_images(batches))
    assert train.labels.tolist() == sum((b[b"labels"] for b in batches), [])
    assert (cache / "datasets" / "cifar-10-python.tar.gz").is_file()
    # Later calls find the extracted copy in the cache without the server.
    test = cifar10(split="test", cache_dir=cache, url="http://127.0.0.1:9/nothing", md5=md5)
    assert torch.equal(test.images, expected_images([files["test_batch"]]))


def test_checksum_mismatch_is_refused_and_leaves_nothing(http_root, tmp_path, monkeypatch):
    www, base = http_root
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    make_cifar10_tarball(www / "cifar-10-python.tar.gz")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch.*expected 0{32}"):
        cifar10(cache_dir=cache, url=base + "cifar-10-python.tar.gz", md5="0" * 32)
    assert not any((cache / "datasets").iterdir())
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(base + "cifar-10-python.tar.gz", tmp_path / "x.tgz", md5="0" * 32, progress=False)
    assert not (tmp_path / "x.tgz").exists()


def test_file_url_and_offline_message(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    files, md5 = make_cifar10_tarball(tmp_path / "mirror.tar.gz", per_batch=2)
    data = cifar10(split="test", cache_dir=tmp_path / "c", url=(tmp_path / "mirror.tar.gz").as_uri(), md5=md5)
    assert torch.equal(data.images, expected_images([files["test_batch"]]))
    # A server that refuses the connection: the message says what failed and where to put the data.
    with pytest.raises(DatasetNotFoundError, match=r"(?s)not found.*could not download.*Offline\?.*--data"):
        cifar10(cache_dir=tmp_path / "empty", url="http://127.0.0.1:9/cifar-10-python.tar.gz", md5=md5)
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        cifar10(cache_dir=tmp_path / "empty", download=False)


def test_search_order_data_then_env_then_cache(tmp_path, monkeypatch, write_tree):
    _, md5 = make_cifar10_tarball(tmp_path / "cifar-10-python.tar.gz", per_batch=1)
    extract_dir = tmp_path / "env"
    extract_dir.mkdir()
    tarfile.open(tmp_path / "cifar-10-python.tar.gz").extractall(extract_dir, filter="data")
    monkeypatch.setenv("CNNARCH_DATA", str(extract_dir))
    env = cifar10(split="test", cache_dir=tmp_path / "cache", download=False)
    assert env.source.endswith("env/cifar-10-batches-py") and len(env) == 1
    # An explicit root wins over $CNNARCH_DATA; an ImageFolder tree under a known alias is found.
    classes = tuple(CIFAR10_CLASSES)
    write_tree(tmp_path / "mine" / "cifar10-jpeg" / "test", classes=classes, per_class=2, size=(32, 32))
    write_tree(tmp_path / "mine" / "cifar10-jpeg" / "train", classes=classes, per_class=1, size=(32, 32))
    mine = cifar10(tmp_path / "mine", "test", cache_dir=tmp_path / "cache", progress=False)
    assert len(mine) == 20 and mine.classes == CIFAR10_CLASSES
    # A tree of other images is not taken for CIFAR-10.
    write_tree(tmp_path / "other" / "test", classes=classes, per_class=1, size=(8, 8))
    write_tree(tmp_path / "other" / "train", classes=classes, per_class=1, size=(8, 8))
    with pytest.raises(
        ValueError, match=r"10 classes of \(3, 8, 8\) images; CIFAR-10 has 10 classes of 32x32"
    ):
        cifar10(tmp_path / "other", "test", cache_dir=tmp_path / "cache", progress=False)
    # A --data that lacks the dataset is an error, not a silent download elsewhere.
    with pytest.raises(DatasetNotFoundError, match="--data"):
        cifar10(tmp_path / "mine" / "cifar10-jpeg" / "test", cache_dir=tmp_path / "cache")


def test_cifar100_fine_and_coarse(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    batches = {"train": _batch(rng, 6, b"fine"), "test": _batch(rng, 3, b"fine")}
    for name, obj in batches.items():
        (d / name).write_bytes(pickle.dumps(obj, protocol=2))
    meta = {
        b"fine_label_names": [b"f%d" % i for i in range(100)],
        b"coarse_label_names": [b"c%d" % i for i in range(20)],
    }
    (d / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    fine = cifar100(tmp_path, "train")
    coarse = cifar100(tmp_path, "train", labels="coarse")
    assert len(fine.classes) == 100 and len(coarse.classes) == 20
    assert fine.labels.tolist() == batches["train"][b"fine_labels"]
    assert coarse.labels.tolist() == batches["train"][b"coarse_labels"]
    assert torch.equal(fine.images, expected_images([batches["train"]]))


def test_unpickler_refuses_code(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": Evil()}))
    (d / "test_batch").write_bytes(b"")
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        cifar10(tmp_path, "test")


def _write_idx(path, arr, gz):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in arr.shape
    )
    raw = header + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_match_torchvision_reader(tmp_path, gz):
    rng = np.random.default_rng(2)
    sfx = ".gz" if gz else ""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    _write_idx(raw / f"t10k-images-idx3-ubyte{sfx}", images, gz)
    _write_idx(raw / f"t10k-labels-idx1-ubyte{sfx}", labels, gz)
    data = mnist(tmp_path, "test")
    assert data.images.shape == (7, 1, 28, 28) and data.classes == [str(i) for i in range(10)]
    if not gz:  # torchvision's own reader as the oracle (it reads uncompressed files)
        assert torch.equal(data.images[:, 0], read_image_file(str(raw / "t10k-images-idx3-ubyte")))
        assert torch.equal(data.labels, read_label_file(str(raw / "t10k-labels-idx1-ubyte")))
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        mnist(tmp_path, "train")
    (raw / f"t10k-images-idx3-ubyte{sfx}").write_bytes(
        (gzip.compress if gz else bytes)(bytes([0, 0, 8, 3]) + b"\0\0\0\x07\0\0\0\x1c\0\0\0\x1c" + b"\0" * 10)
    )
    with pytest.raises(ValueError, match="truncated"):
        read_idx(raw / f"t10k-images-idx3-ubyte{sfx}")


def test_fashion_mnist_download_from_local_server(http_root, tmp_path, monkeypatch):
    www, base = http_root
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(www / "train-images-idx3-ubyte.gz", images, True)
    _write_idx(www / "train-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8), True)
    # The files are not the official ones, so the official MD5s must refuse them.
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        fashion_mnist(cache_dir=tmp_path / "c", url=base)
    from cnnarch.data import datasets

    md5s = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in www.iterdir()}
    patched = {"train": tuple((s, md5s[s + ".gz"]) for s, _ in datasets.FASHION_FILES["train"])}
    monkeypatch.setattr(datasets, "FASHION_FILES", patched)
    data = load_dataset("fashion_mnist", "train", cache_dir=tmp_path / "c", url=base)
    assert data.classes[0] == "T-shirt/top" and data.labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))


def test_load_dataset_names(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose from cifar10, cifar100"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="needs root"):
        load_dataset("folder")


def test_limit_round_robin_for_array_datasets(tmp_path):
    _, _ = make_cifar10_tarball(tmp_path / "cifar-10-python.tar.gz", per_batch=30)
    tarfile.open(tmp_path / "cifar-10-python.tar.gz").extractall(tmp_path, filter="data")
    full = cifar10(tmp_path, "train")
    few = cifar10(tmp_path, "train", limit=12)
    assert len(few) == 12
    # Independent rule: walk the dataset, keep an image while its class has fewer than k so far,
    # with k the smallest count that reaches 12 images.
    for k in range(1, 50):
        seen, keep = {}, []
        for i, y in enumerate(full.labels.tolist()):
            if seen.get(y, 0) < k:
                seen[y] = seen.get(y, 0) + 1
                keep.append(i)
        if len(keep) >= 12:
            break
    assert set(few.labels.tolist()) <= set(full.labels[keep].tolist())
    assert torch.equal(few.class_counts().clamp(max=k), few.class_counts())
