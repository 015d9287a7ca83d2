"""CIFAR-10 reading in every layout (on small data the tests make), caching, errors, the split, device batches."""

import pickle
import re
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from natrl.datasets import CLASSES, DeviceBatches, load_cifar10, split_indices
from natrl.errors import NatrlError


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NATRL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_pickle_layout(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = _images(per_batch, i)
        flat = x.transpose(0, 3, 1, 2).reshape(per_batch, -1)  # CIFAR stores CHW rows
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": flat, b"labels": y.tolist(), b"batch_label": name.encode()}, f)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def make_image_folder(root, n=3, fmt="PNG"):
    arrays = {}
    for split in ("train", "test"):
        x, y = _images(n * 2, {"train": 1, "test": 2}[split])
        for i, (img, label) in enumerate(zip(x, y)):
            d = root / split / CLASSES[label]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i:04d}.{fmt.lower()}", format=fmt)
        arrays[split] = (x, y)
    return arrays


def test_pickle_layout(tmp_path, cache):
    train_x, train_y, test_x, test_y = make_pickle_layout(tmp_path)
    d = load_cifar10(tmp_path)
    np.testing.assert_array_equal(d["train_x"], train_x)
    np.testing.assert_array_equal(d["train_y"], train_y)
    np.testing.assert_array_equal(d["test_x"], test_x)
    assert len(list(cache.glob("*.npz"))) == 1
    again = load_cifar10(tmp_path / "cifar-10-batches-py")  # the batches folder itself works too
    np.testing.assert_array_equal(again["test_y"], test_y)


def test_image_folder_and_tarball(tmp_path, cache):
    arrays = make_image_folder(tmp_path / "imgs")  # PNG: lossless, so pixels compare exactly
    d = load_cifar10(tmp_path / "imgs")
    assert d["train_x"].shape == (6, 32, 32, 3) and d["train_x"].dtype == np.uint8
    # files are read in sorted path order: class folder, then file name
    order = sorted(range(6), key=lambda i: (CLASSES[arrays["train"][1][i]], i))
    np.testing.assert_array_equal(d["train_x"], arrays["train"][0][order])
    np.testing.assert_array_equal(d["train_y"], arrays["train"][1][order])
    with tarfile.open(tmp_path / "c.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "imgs", arcname="cifar10")
    t = load_cifar10(tmp_path / "c.tar.gz")
    for k in d:
        np.testing.assert_array_equal(t[k], d[k])


def test_jpeg_images(tmp_path, cache):
    make_image_folder(tmp_path, fmt="JPEG")
    assert load_cifar10(tmp_path, cache=False)["test_x"].shape == (6, 32, 32, 3)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "no CIFAR-10 data at"),
        (lambda p: (p / "train").mkdir(parents=True) or (p / "test").mkdir(), "has no train/<class>/*.jpg"),
        (lambda p: p.mkdir() or (p / "data_batch_1").write_bytes(b"garbage"), "is not a CIFAR-10 python batch"),
    ],
)
def test_missing_or_wrong_data(tmp_path, cache, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(NatrlError, match=re.escape(message)) as e:
        load_cifar10(root)
    assert "cifar-10-batches-py" in str(e.value) or "has no" in str(e.value) or "not a CIFAR" in str(e.value)


def test_restricted_unpickler(tmp_path, cache):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(NatrlError, match="refusing to load builtins.print"):
        load_cifar10(tmp_path)


def test_corrupt_tarball(tmp_path, cache):
    (tmp_path / "x.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(NatrlError, match="cannot read tarball"):
        load_cifar10(tmp_path / "x.tar.gz")


def test_split_is_disjoint_seeded_and_train_only():
    w, r = split_indices(50000, 0.4, seed=3)
    assert len(w) == 20000 and len(r) == 30000 and not set(w) & set(r)
    assert set(w) | set(r) == set(range(50000))
    w2, _ = split_indices(50000, 0.4, seed=3)
    np.testing.assert_array_equal(w, w2)
    assert not np.array_equal(w, split_indices(50000, 0.4, seed=4)[0])


def test_device_batches_validation_is_plain():
    x, y = _images(10, 0)
    b = DeviceBatches(x, y, batch_size=4, augment=False)
    xs, ys = zip(*b.batches(shuffle=False))
    assert [len(t) for t in ys] == [4, 4, 2]
    back = torch.cat(xs) * b.std + b.mean
    np.testing.assert_allclose((back * 255).round().permute(0, 2, 3, 1).numpy(), x, atol=1e-3)


def test_device_batches_augmentation_is_a_crop_or_flip_of_the_image():
    x, y = _images(64, 1)
    b = DeviceBatches(x, y, batch_size=64, augment=True, seed=0)
    ((xa, ya),) = list(b.batches(shuffle=False))
    img = torch.as_tensor(x).permute(0, 3, 1, 2).float() / 255
    aug = xa * b.std + b.mean
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    for i in range(8):  # every augmented image is some 32x32 window of the padded image, maybe mirrored
        found = any(
            torch.allclose(aug[i], w, atol=1e-5)
            for oy in range(9)
            for ox in range(9)
            for w in (padded[i, :, oy : oy + 32, ox : ox + 32], padded[i, :, oy : oy + 32, ox : ox + 32].flip(-1))
        )
        assert found
    b2 = DeviceBatches(x, y, batch_size=64, augment=True, seed=0)
    torch.testing.assert_close(next(b2.batches(shuffle=False))[0], xa)  # seeded: reproducible


def test_cutout_zeroes_a_square():
    """Same seed with and without cutout: same crops and flips, plus an at most 8x8 hole of zeros per image."""
    x = np.full((4, 32, 32, 3), 255, dtype=np.uint8)

    def blank_pixels(cutout):
        b = DeviceBatches(x, np.zeros(4, dtype=np.int64), batch_size=4, augment=True, cutout=cutout, seed=0)
        ((xa, _),) = list(b.batches(shuffle=False))
        return ((xa * b.std + b.mean).abs() < 1e-5).all(1).sum((1, 2))  # zeros from padding (and cutout)

    extra = blank_pixels(8) - blank_pixels(0)
    assert (extra > 0).all() and (extra <= 8 * 8).all()


@pytest.mark.parametrize("size", [16, 7])
def test_cutout_hole_is_exactly_size_by_size(size):
    """DARTS' Cutout: an L x L hole (16 x 16 for the papers' cutout 16, not 17 x 17), clipped only at the border."""
    b = DeviceBatches(np.zeros((1, 32, 32, 3), np.uint8), np.zeros(1, np.int64), 1, cutout=size, seed=0)
    holes = b._hole(4096, 32, 32, "cpu")
    rows, cols = holes.any(2).sum(1), holes.any(1).sum(1)
    assert int(rows.max()) == size and int(cols.max()) == size  # interior holes: exactly L rows and L columns
    assert (holes.sum((1, 2)) == rows * cols).all()  # a rectangle (clipped square), never more than L x L
    assert int(holes.sum((1, 2)).max()) == size * size


def test_cifar100_pickle_layout_and_class_folders(tmp_path, cache):
    folder = tmp_path / "c100" / "cifar-100-python"
    folder.mkdir(parents=True)
    arrays = {}
    for i, name in enumerate(("train", "test")):
        rng = np.random.default_rng(i)
        x, y = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), rng.integers(0, 100, 6)
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    b"data": x.transpose(0, 3, 1, 2).reshape(6, -1),
                    b"fine_labels": y.tolist(),
                    b"coarse_labels": (y // 5).tolist(),
                },
                f,
            )
        arrays[name] = (x, y)
    d = load_cifar10(tmp_path / "c100", dataset="cifar100")
    np.testing.assert_array_equal(d["train_x"], arrays["train"][0])
    np.testing.assert_array_equal(d["test_y"], arrays["test"][1])  # fine labels, not coarse
    # image folders of other data sets number their classes in sorted folder order
    for split in ("train", "test"):
        for cls in ("zebra", "apple"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "imgs" / split / cls / "0.png")
    d = load_cifar10(tmp_path / "imgs", dataset="cifar100")
    assert d["train_y"].tolist() == [0, 1]  # apple, zebra
    with pytest.raises(NatrlError, match="no CIFAR-100 data at"):
        load_cifar10(tmp_path / "nothing", dataset="cifar100")
