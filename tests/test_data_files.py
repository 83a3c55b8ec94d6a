"""Custom sources: image folders (PNG/JPEG/WebP and the mixed-size / channel / alpha policy),
npz / npy arrays, pt tensors, and load_samples_path dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dgmbench.data import get_dataset
from dgmbench.data.files import load_folder, load_npz, load_pt, load_samples_path
from dgmbench.errors import DataError, UsageError


def rand_u8(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def as_u8(t: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float in [0, 1] -> (N, H, W, C) uint8, for exact comparisons."""
    return (t * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_png_folder_exact_and_natural_order(tmp_path):
    imgs = rand_u8((11, 6, 5, 3))
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    ds = get_dataset(f"folder:{tmp_path}")
    assert ds.data.shape == (11, 3, 6, 5) and ds.data.dtype == torch.float32 and ds.labels is None
    np.testing.assert_array_equal(as_u8(ds.data), imgs)  # img2 before img10


def test_webp_lossless_and_jpeg(tmp_path):
    imgs = rand_u8((3, 8, 8, 3), seed=1)
    (tmp_path / "w").mkdir()
    (tmp_path / "j").mkdir()
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(tmp_path / "w" / f"{i}.webp", lossless=True)
        smooth = np.full((8, 8, 3), 40 * i + 20, np.uint8)
        Image.fromarray(smooth).save(tmp_path / "j" / f"{i}.JPG", quality=95)
    np.testing.assert_array_equal(as_u8(load_folder(tmp_path / "w").data), imgs)
    jpg = load_folder(tmp_path / "j").data
    expected = torch.tensor([20, 60, 100]).float().div(255).view(3, 1, 1, 1)
    assert (jpg - expected).abs().max() < 3 / 255  # flat colours survive JPEG almost exactly


def test_mixed_sizes_error_lists_sizes_unless_resize(tmp_path):
    for i in range(3):
        Image.fromarray(rand_u8((8, 8, 3), i)).save(tmp_path / f"a{i}.png")
    Image.fromarray(rand_u8((4, 6, 3))).save(tmp_path / "b.png")
    with pytest.raises(DataError) as exc:
        load_folder(tmp_path)
    msg = str(exc.value)
    assert "8x8 (3 files" in msg and "4x6 (1 files, e.g. b.png)" in msg and "resize=" in msg and "\n" not in msg
    ds = load_folder(tmp_path, resize=(8, 8))
    assert ds.data.shape == (4, 3, 8, 8) and ds.meta["resized"] == 1
    # the images already at the target size are untouched
    np.testing.assert_array_equal(as_u8(ds.data[:3]), np.stack([rand_u8((8, 8, 3), i) for i in range(3)]))
    assert load_folder(tmp_path, resize=4).data.shape == (4, 3, 4, 4)


def test_grayscale_kept_and_mixed_with_rgb_becomes_rgb(tmp_path):
    gray = rand_u8((2, 5, 5), seed=2)
    for i, a in enumerate(gray):
        Image.fromarray(a, mode="L").save(tmp_path / f"g{i}.png")
    ds = load_folder(tmp_path)
    assert ds.data.shape == (2, 1, 5, 5)
    np.testing.assert_array_equal(as_u8(ds.data)[..., 0], gray)
    Image.fromarray(rand_u8((5, 5, 3), seed=3)).save(tmp_path / "rgb.png")
    mixed = load_folder(tmp_path)
    assert mixed.data.shape == (3, 3, 5, 5)
    for c in range(3):  # gray replicated into each channel
        np.testing.assert_array_equal(as_u8(mixed.data)[:2, ..., c], gray)
    forced = load_folder(tmp_path, channels=1)
    assert forced.data.shape == (3, 1, 5, 5)
    r, g, b = (rand_u8((5, 5, 3), seed=3).astype(np.float64)[..., k] for k in range(3))
    luma = r * 299 / 1000 + g * 587 / 1000 + b * 114 / 1000  # ITU-R 601-2
    assert np.abs(as_u8(forced.data)[2, ..., 0].astype(float) - luma).max() <= 1


def test_rgba_composited_on_white_black_or_dropped(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [255, 0, 0, 0]  # fully transparent
    rgba[0, 2] = [0, 0, 0, 128]  # half-transparent black
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    white = as_u8(load_folder(tmp_path).data)[0, 0]
    assert white[0].tolist() == [255, 0, 0] and white[1].tolist() == [255, 255, 255] and white[2].tolist() == [127] * 3
    black = as_u8(load_folder(tmp_path, alpha="black").data)[0, 0]
    assert black[1].tolist() == [0, 0, 0] and black[2].tolist() == [0, 0, 0]
    drop = as_u8(load_folder(tmp_path, alpha="drop").data)[0, 0]
    assert drop[1].tolist() == [255, 0, 0]
    la = np.stack([np.full((2, 2), 0, np.uint8), np.full((2, 2), 0, np.uint8)], -1)  # transparent black, LA
    Image.fromarray(la, mode="LA").save(tmp_path / "b.png")
    (tmp_path / "a.png").unlink()
    ds = load_folder(tmp_path)
    assert ds.data.shape == (1, 1, 2, 2) and float(ds.data.min()) == 1.0  # gray stays 1 channel, on white


def test_class_subfolders_and_split_subfolders(tmp_path):
    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "dog")):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(k + 1 + (split == "train")):
                Image.fromarray(rand_u8((4, 4, 3), i)).save(d / f"{i}.png")
    tr = get_dataset(f"folder:{tmp_path}", "train")
    assert tr.labels.tolist() == [0, 0, 1, 1, 1] and tr.class_names == ["cat", "dog"]
    te = get_dataset(f"folder:{tmp_path}", "test")
    assert te.labels.tolist() == [0, 1, 1]
    with pytest.raises(DataError, match="split sub-folders train, test but no 'val'"):
        get_dataset(f"folder:{tmp_path}", "val")


def test_corrupt_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_folder(tmp_path)
    Image.fromarray(rand_u8((8, 8, 3))).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as exc:
        load_folder(tmp_path)
    assert str(tmp_path / "cut.png") in str(exc.value) and "\n" not in str(exc.value)
    (tmp_path / "cut.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cut.png: cannot read the image"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_folder(tmp_path / "nope")


def test_npz_layouts_and_labels(tmp_path):
    u8 = rand_u8((4, 6, 6, 3))
    np.savez(tmp_path / "nhwc.npz", images=u8, labels=np.array([0, 1, 2, 1]))
    ds = get_dataset(f"npz:{tmp_path / 'nhwc.npz'}")
    np.testing.assert_array_equal(as_u8(ds.data), u8)
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 2, 1]
    f = u8.transpose(0, 3, 1, 2).astype(np.float64) / 255
    np.savez(tmp_path / "nchw.npz", f, np.array([3, 3, 3, 3]))  # arr_0, arr_1
    ds = load_npz(tmp_path / "nchw.npz")
    assert ds.data.dtype == torch.float32 and ds.labels.tolist() == [3] * 4
    np.testing.assert_allclose(ds.data.numpy(), f, atol=1e-7)
    np.save(tmp_path / "gray.npy", rand_u8((5, 7, 7)))
    assert load_samples_path(tmp_path / "gray.npy").data.shape == (5, 1, 7, 7)
    np.savez(tmp_path / "splits.npz", x_train=u8[:3], y_train=[0, 1, 2], x_test=u8[3:], y_test=[9])
    assert load_npz(tmp_path / "splits.npz", "test").labels.tolist() == [9]
    assert len(load_npz(tmp_path / "splits.npz", "train")) == 3
    pts = np.random.default_rng(0).standard_normal((10, 2))
    np.savez(tmp_path / "pts.npz", samples=pts)
    p = load_samples_path(tmp_path / "pts.npz")
    assert p.kind == "points" and p.data.shape == (10, 2)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.full((3, 1, 4, 4), 1.5)}, "values must lie in [0, 1], found range [1.5, 1.5] in 3 of 3 samples"),
        ({"images": np.where(np.arange(32).reshape(2, 1, 4, 4) == 5, np.nan, 0.5)}, "1 of 2 samples contain NaN or Inf"),
        ({"images": np.zeros((2, 4, 4, 4, 1))}, "expected images (N, C, H, W)"),
        ({"images": np.zeros((2, 784))}, "looks like flattened images"),
        ({"images": np.zeros((2, 4, 4), np.int64)}, "expected float in [0, 1] or uint8"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0.5, 1.0])}, "labels must be integers of shape (2,)"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1, 2])}, "labels must be integers of shape (2,)"),
        ({"pictures": np.zeros((2, 4, 4), np.uint8)}, "no array named images / x / samples / data / arr_0 (found keys: pictures)"),
    ],
)
def test_bad_npz_content_names_the_file(tmp_path, arrays, message):
    path = tmp_path / "s.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as exc:
        load_npz(path)
    assert str(path) in str(exc.value) and message in str(exc.value) and "\n" not in str(exc.value)


def test_corrupt_npz(tmp_path):
    path = tmp_path / "s.npz"
    np.savez_compressed(path, images=rand_u8((50, 8, 8)))
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(DataError, match=f"{path}: not a readable .npz/.npy file"):
        load_npz(path)


def test_pt_files(tmp_path):
    x = torch.rand(4, 3, 5, 5)
    torch.save(x, tmp_path / "t.pt")
    assert torch.equal(load_pt(tmp_path / "t.pt").data, x)
    torch.save({"x": (x * 255).round().to(torch.uint8), "y": torch.tensor([1, 2, 3, 4]), "class_names": ["a", "b", "c", "d", "e"]},
               tmp_path / "d.pt")
    ds = get_dataset(f"pt:{tmp_path / 'd.pt'}")
    assert ds.labels.tolist() == [1, 2, 3, 4] and ds.class_names == ["a", "b", "c", "d", "e"]
    assert (ds.data - x).abs().max() <= 0.5 / 255 + 1e-7
    torch.save((x.double(), torch.zeros(4, dtype=torch.long)), tmp_path / "pair.pth")
    assert load_samples_path(tmp_path / "pair.pth").data.dtype == torch.float32


def test_bad_pt_files(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save(torch.rand(100, 3, 4, 4), path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="bad.pt: cannot load it as a torch file of tensors .*corrupt, truncated"):
        load_pt(path)
    torch.save({"images": torch.rand(2, 3, 4, 4), "extra": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(DataError, match="holds objects other than tensors"):
        load_pt(path)
    torch.save([torch.rand(2, 2)] * 3, path)
    with pytest.raises(DataError, match="expected a tensor, a \\(data, labels\\) pair or a dict"):
        load_pt(path)


def test_load_samples_path_dispatch(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_samples_path(tmp_path / "missing.npz")
    (tmp_path / "s.h5").write_bytes(b"")
    with pytest.raises(UsageError, match="unsupported samples file '.h5'"):
        load_samples_path(tmp_path / "s.h5")
    (tmp_path / "imgs").mkdir()
    Image.fromarray(rand_u8((4, 4, 3))).save(tmp_path / "imgs" / "0.png")
    ds = load_samples_path(tmp_path / "imgs")
    assert ds.data.shape == (1, 3, 4, 4) and ds.split == "all"
