"""Real-data loaders: decoding every format, layouts, real sets, and every bad-input case."""

import sys

import numpy as np
import pytest
from PIL import Image

from jaxsim.data import splits
from jaxsim.data.sources import folders, pairs
from jaxsim.data.sources import tfds as tfds_adapter


def _write(path, value=128, size=(12, 10), mode="L", fmt=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  if mode == "I;16":
    Image.fromarray(np.full(size[::-1], value, np.uint16)).save(path, format=fmt)
  else:
    colour = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, colour).save(path, format=fmt)
  return path


def _identity_tree(root, n_ids=3, n_img=2, ext=".png"):
  for i in range(n_ids):
    for k in range(n_img):
      _write(root / f"id{i}" / f"{k}{ext}", value=40 * i + 10)
  return root


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".pgm"])
def test_decodes_every_format(tmp_path, ext):
  path = _write(tmp_path / f"x{ext}", value=100)
  image = folders.decode_image(path, image_size=(6, 5), channels=1)
  assert image.shape == (6, 5, 1) and image.dtype == np.float32
  np.testing.assert_allclose(image, 100 / 255, atol=2 / 255)  # JPEG is lossy
  rgb = folders.decode_image(_write(tmp_path / f"c{ext}", 100, mode="RGB"), channels=3)
  assert rgb.shape == (64, 64, 3)
  np.testing.assert_allclose(rgb[0, 0], np.array([100, 0, 155]) / 255, atol=3 / 255)


def test_decodes_16_bit_greyscale(tmp_path):
  path = _write(tmp_path / "deep.png", value=65535 // 2, mode="I;16")
  np.testing.assert_allclose(folders.decode_image(path, image_size=4), 0.5, atol=1 / 255)


def test_identity_folders(tmp_path):
  src = folders.identity_folder_source(_identity_tree(tmp_path), image_size=8, channels=3)
  assert len(src) == 6 and src.identity_names == ["id0", "id1", "id2"]
  np.testing.assert_array_equal(src.identities, [0, 0, 1, 1, 2, 2])
  r = src[3]
  assert r["image"].shape == (8, 8, 3) and int(r["identity"]) == 1
  np.testing.assert_allclose(r["image"][..., 0], 50 / 255, atol=1e-6)


def test_corrupt_image_names_the_file(tmp_path):
  root = _identity_tree(tmp_path / "data")
  bad = root / "id1" / "broken.png"
  bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
  src = folders.identity_folder_source(root)
  index = src.files.index(bad)
  with pytest.raises(folders.ImageDecodeError, match="broken.png.*skip_corrupt=True"):
    src[index]


def test_corrupt_images_can_be_skipped_and_counted(tmp_path):
  root = _identity_tree(tmp_path / "data")
  (root / "id0" / "bad1.jpg").write_bytes(b"garbage")
  (root / "id2" / "bad2.tif").write_bytes(b"")
  with pytest.warns(UserWarning, match="skipped 2 unreadable image file"):
    src = folders.identity_folder_source(root, skip_corrupt=True)
  assert len(src) == 6 and len(src.skipped_files) == 2


def test_missing_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist.*check the data path"):
    folders.identity_folder_source(tmp_path / "nope")


def test_empty_identity_folder(tmp_path):
  root = _identity_tree(tmp_path / "data")
  (root / "id9").mkdir()
  (root / "id9" / "notes.txt").write_text("no images here")
  with pytest.raises(ValueError, match=r"1 of 4 identity folders .* hold no image files.*id9"):
    folders.identity_folder_source(root)


def test_too_few_identities_for_split(tmp_path):
  src = folders.identity_folder_source(_identity_tree(tmp_path, n_ids=2))
  with pytest.raises(ValueError, match="too few identities: 2 distinct identities"):
    splits.split_identities(src.identities, {"train": 0.6, "val": 0.2, "test": 0.2})


def test_unmatched_stems_in_paired_folders(tmp_path):
  for stem in ("a", "b", "c"):
    _write(tmp_path / "face" / f"{stem}.png", mode="RGB")
  for stem in ("a", "b", "d", "e"):
    _write(tmp_path / "fingerprint" / f"{stem}.bmp")
  with pytest.raises(ValueError, match=r"1 only in face/.*2 only in fingerprint/"):
    folders.paired_stem_source(tmp_path)


def test_paired_layouts(tmp_path):
  for stem in ("ann_1", "ann_2", "bob_1"):
    _write(tmp_path / "stems" / "face" / f"{stem}.png", mode="RGB")
    _write(tmp_path / "stems" / "fingerprint" / f"{stem}.tif")
  src = folders.paired_stem_source(tmp_path / "stems", identity_pattern=r"^(.+)_\d+$", image_size=8)
  assert len(src) == 3 and src.identity_names == ["ann", "bob"]
  r = src[1]
  assert r["image_a"].shape == (8, 8, 3) and r["image_b"].shape == (8, 8, 1)
  for modality, n in (("face", 2), ("fingerprint", 3)):
    for ident in ("x", "y"):
      for k in range(n):
        _write(tmp_path / "ids" / modality / ident / f"{k}.png")
  src = folders.paired_identity_folder_source(tmp_path / "ids", channels_a=1, image_size=8)
  assert len(src) == 6
  np.testing.assert_array_equal(src.identities, [0, 0, 0, 1, 1, 1])
  (tmp_path / "ids" / "fingerprint" / "z").mkdir()
  _write(tmp_path / "ids" / "fingerprint" / "z" / "0.png")
  with pytest.raises(ValueError, match="identity folders do not match"):
    folders.paired_identity_folder_source(tmp_path / "ids")


def test_totally_looks_like_layout(tmp_path):
  for stem in ("001", "002"):
    _write(tmp_path / "left" / f"{stem}.jpg", mode="RGB")
    _write(tmp_path / "right" / f"{stem}.jpg", mode="RGB")
  src = pairs.totally_looks_like_source(tmp_path, image_size=16)
  assert len(src) == 2 and src[1]["image_b"].shape == (16, 16, 3)


def test_flat_pattern_mismatch(tmp_path):
  _write(tmp_path / "DB1_B" / "101_1.tif")
  _write(tmp_path / "DB1_B" / "oops.tif")
  with pytest.raises(ValueError, match="1 file name.*oops.tif"):
    folders.fvc2002_source(tmp_path, databases=["DB1_B"])


def test_tfds_without_the_package(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ImportError, match=r"pip install 'jaxsim\[tfds\]'"):
    tfds_adapter.tfds_source("mnist", split="test")


def test_tfds_dataset_not_prepared(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="not prepared.*never downloads"):
    tfds_adapter.tfds_source("mnist", split="test", data_dir=str(tmp_path))


def test_real_orl_faces(shared_data):
  src = folders.identity_folder_source(shared_data / "orl_faces", modality="face", image_size=32)
  assert len(src) == 400 and len(src.identity_names) == 40
  assert np.all(np.bincount(src.identities) == 10)
  image = src[0]["image"]
  assert image.shape == (32, 32, 1) and 0.05 < image.mean() < 0.95


def test_real_fvc2002(shared_data):
  src = folders.fvc2002_source(shared_data / "fvc2002_db_b", image_size=48, crop_fraction=0.8)
  assert len(src) == 240 and len(src.identity_names) == 30
  assert src.identity_names[0] == "DB1_B/101" and src.identity_names[-1] == "DB3_B/110"
  assert np.all(np.bincount(src.identities) == 8)
  assert src[100]["image"].shape == (48, 48, 1)


def test_non_image_files_are_counted_not_silently_skipped(tmp_path):
  root = _identity_tree(tmp_path / "data")
  (root / "id0" / "notes.txt").write_text("who is this")
  (root / "id1" / "11.PGM.bak").write_bytes(b"P5 old copy")
  folders.clear_skipped_files()
  with pytest.warns(UserWarning, match="left out 2 file.*without an image extension"):
    src = folders.identity_folder_source(root)
  assert len(src) == 6
  assert sorted(p.name for p in src.non_image_files) == ["11.PGM.bak", "notes.txt"]
  assert "2 non-image files skipped" in repr(src)
  record = folders.skipped_files()
  assert record["num_non_image"] == 2 and record["num_unreadable"] == 0
  assert any(name.endswith("notes.txt") for name in record["non_image"])
  folders.clear_skipped_files()
  assert folders.skipped_files() == {}


def test_skipped_corrupt_files_are_recorded_for_the_run(tmp_path):
  root = _identity_tree(tmp_path / "data")
  (root / "id0" / "bad1.jpg").write_bytes(b"garbage")
  folders.clear_skipped_files()
  with pytest.warns(UserWarning, match="skipped 1 unreadable"):
    src = folders.identity_folder_source(root, skip_corrupt=True)
  assert "1 unreadable files skipped" in repr(src)
  record = folders.skipped_files()
  assert record["num_unreadable"] == 1 and record["unreadable"][0].endswith("bad1.jpg")
  folders.clear_skipped_files()


def test_corrupt_image_error_names_the_config_key(tmp_path):
  bad = tmp_path / "broken.png"
  bad.write_bytes(b"not a png")
  with pytest.raises(folders.ImageDecodeError, match=r"--config\.data\.skip_corrupt=True"):
    folders.decode_image(bad)


def test_face_tasks_pass_data_skip_corrupt_to_the_loader(tmp_path):
  import ml_collections  # noqa: PLC0415

  from jaxsim.data import loaders  # noqa: PLC0415

  root = _identity_tree(tmp_path / "data")
  (root / "id1" / "broken.png").write_bytes(b"garbage")
  cfg = ml_collections.ConfigDict(
    {"source": "folders", "root": str(root), "image_size": 8, "channels": 1}
  )
  with pytest.raises(folders.ImageDecodeError):
    loaders.load_faces(cfg)
  cfg.skip_corrupt = True
  folders.clear_skipped_files()
  with pytest.warns(UserWarning, match="skipped 1 unreadable"):
    source, names, what = loaders.load_faces(cfg)
  assert len(names) == 3 and "1 unreadable files skipped" in what
  assert folders.skipped_files()["num_unreadable"] == 1
  folders.clear_skipped_files()
