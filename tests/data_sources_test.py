"""Built-in sources: determinism, image contract, identity signal, rho = 0 independence."""

import gzip
import struct

import numpy as np
import pytest
import scipy.stats

from jaxsim.data.sources import digits_text, face_fingerprint, faces, fingerprints, pairs


def _check_image(image, channels, size):
  assert image.dtype == np.float32
  assert image.shape == (size, size, channels)
  assert image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.parametrize(
  "make, channels",
  [
    (lambda **kw: faces.SyntheticFaces(5, 3, image_size=24, **kw), 3),
    (lambda **kw: fingerprints.SyntheticFingerprints(5, 3, image_size=24, **kw), 1),
  ],
)
def test_synthetic_sources_are_deterministic_and_follow_the_contract(make, channels):
  a, b, other = make(seed=3), make(seed=3), make(seed=4)
  assert len(a) == 15
  np.testing.assert_array_equal(a.identities, np.repeat(np.arange(5), 3))
  for i in (0, 7, 14):
    _check_image(a[i]["image"], channels, 24)
    np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
    assert int(a[i]["identity"]) == i // 3
  assert not np.array_equal(a[0]["image"], a[1]["image"])  # nuisance differs per image
  assert not np.array_equal(a[0]["image"], other[0]["image"])  # seed matters
  with pytest.raises(IndexError):
    a[15]


def test_rendering_in_worker_processes_gives_the_same_images():
  # 9 identities in chunks for 2 workers: a chunk boundary falls inside the records
  # but never inside an identity; the fingerprints' master cache is per process.
  for source in (
    faces.SyntheticFaces(9, 2, image_size=16, difficulty=1.0, seed=1),
    fingerprints.SyntheticFingerprints(9, 2, image_size=16, difficulty=1.0, seed=1),
  ):
    serial = source.render()
    assert serial.shape == (18, 16, 16, 3 if source.modality == "face" else 1)
    np.testing.assert_array_equal(serial[5], source[5]["image"])
    np.testing.assert_array_equal(source.render(workers=2), serial)
  with pytest.raises(ValueError, match="workers"):
    source.render(workers=-1)


@pytest.mark.parametrize(
  "source",
  [
    faces.SyntheticFaces(12, 2, image_size=24, difficulty=0.0),
    fingerprints.SyntheticFingerprints(12, 2, image_size=32, difficulty=0.0),
  ],
)
def test_without_nuisance_same_identity_images_are_closer_than_different(source):
  images = np.stack([source[i]["image"].ravel() for i in range(len(source))])
  d = ((images[:, None] - images[None]) ** 2).mean(-1)
  same = source.identities[:, None] == source.identities[None]
  off_diag = ~np.eye(len(source), dtype=bool)
  assert d[same & off_diag].mean() < 0.5 * d[~same].mean()


def _poincare_index(params, centre, radius=0.05, n=720):
  t = np.linspace(0, 2 * np.pi, n + 1)
  x, y = centre.real + radius * np.cos(t), centre.imag + radius * np.sin(t)
  theta = fingerprints.orientation_field(params, x, y)
  # Orientation is defined modulo pi: unwrap the doubled angle.
  total = np.sum(np.angle(np.exp(2j * np.diff(theta))))
  return total / (4 * np.pi)


def test_orientation_field_has_core_plus_half_and_delta_minus_half():
  params = fingerprints.fingerprint_parameters(np.zeros(fingerprints.LATENT_DIM))
  params.update(pattern_class="right_loop", rotation=0.0, core_x=0.0, core_y=0.0)
  ds = params["delta_spread"]
  assert _poincare_index(params, 0j) == pytest.approx(0.5, abs=1e-6)
  assert _poincare_index(params, ds + 1j * ds) == pytest.approx(-0.5, abs=1e-6)
  assert _poincare_index(params, 0.5 - 0.5j) == pytest.approx(0.0, abs=1e-6)


def test_face_fingerprint_latents_are_independent_at_rho_zero():
  n = 3000
  face, fp = face_fingerprint.subject_latents(n, 0.0, seed=0)
  r = np.corrcoef(face.T, fp.T)[: face.shape[1], face.shape[1] :]
  # Null std of a correlation is 1/sqrt(n); 5 sigma over 1,344 pairs fails by chance
  # with probability < 1e-3.
  assert np.abs(r).max() < 5 / np.sqrt(n)
  # The derived parameters too: pattern class against every face parameter (chi-square).
  classes = np.array(
    [fingerprints.fingerprint_parameters(g)["pattern_class"] for g in fp[:, :]], dtype=object
  )
  face_params = np.array([list(faces.face_parameters(f).values()) for f in face])
  for j in range(face_params.shape[1]):
    bins = np.digitize(face_params[:, j], np.quantile(face_params[:, j], [0.25, 0.5, 0.75]))
    table = np.array(
      [
        [np.sum((classes == c) & (bins == b)) for b in range(4)]
        for c in fingerprints.PATTERN_CLASSES
      ]
    )
    assert scipy.stats.chi2_contingency(table).pvalue > 1e-4


def test_face_fingerprint_correlation_enters_as_documented():
  n = 3000
  face, fp = face_fingerprint.subject_latents(n, 0.8, seed=1)
  k = np.arange(fp.shape[1])
  r = np.array([np.corrcoef(face[:, kk % face.shape[1]], fp[:, kk])[0, 1] for kk in k])
  np.testing.assert_allclose(r, 0.8, atol=5 * 0.36 / np.sqrt(n))  # var of r ~ (1-rho^2)^2/n
  np.testing.assert_allclose(fp.std(0), 1.0, atol=0.06)
  _, fp1 = face_fingerprint.subject_latents(10, 1.0, seed=2)
  face1, _ = face_fingerprint.subject_latents(10, 0.3, seed=2)
  np.testing.assert_allclose(fp1, face1[:, k % face1.shape[1]])
  with pytest.raises(ValueError, match="correlation"):
    face_fingerprint.subject_latents(3, 1.5, seed=0)


def test_face_fingerprint_source_records():
  src = face_fingerprint.FaceFingerprintSource(4, 2, correlation=0.5, image_size=24)
  r = src[5]
  _check_image(r["image_a"], 3, 24)
  _check_image(r["image_b"], 1, 24)
  assert int(r["identity"]) == 2
  np.testing.assert_array_equal(r["image_a"], src.faces[5]["image"])
  np.testing.assert_array_equal(r["image_b"], src.fingerprints[5]["image"])


def test_text_variants_are_disjoint_unambiguous_and_tokenisable():
  owner = {}
  for split in ("train", "heldout"):
    for digit in range(10):
      for strings in digits_text.text_variants(digit, split).values():
        for s in strings:
          assert owner.setdefault(s, digit) == digit, f"{s!r} names two digits"
          assert all(ch in digits_text.CHARACTERS for ch in s)
          assert len(s) <= digits_text.DEFAULT_MAX_LENGTH
  for digit in range(10):
    train = {s for v in digits_text.text_variants(digit).values() for s in v}
    held = {s for v in digits_text.text_variants(digit, "heldout").values() for s in v}
    assert held and not (train & held)
    assert {"three", "Three", "THREE", "3", "tree", "drei"} <= {
      s for v in digits_text.text_variants(3).values() for s in v
    }
  ids, mask = digits_text.encode_text("Três!", max_length=8)
  assert ids.dtype == np.int32 and mask.dtype == bool and mask.sum() == 5
  assert digits_text.decode_text(ids) == "Três?"  # '!' is not in the vocabulary
  assert ids[4] == digits_text.UNKNOWN_ID and ids[5] == digits_text.PAD_ID


def test_digits_text_source_records_and_heldout_texts():
  images = digits_text.builtin_digits("sklearn")
  assert len(images) == 1797
  _check_image(images[0]["image"], 1, 28)
  train = digits_text.DigitsTextSource(images, seed=0)
  held = digits_text.DigitsTextSource(images, text_split="heldout", seed=0)
  r = train[10]
  assert set(r) == {"image", "identity", "text", "text_ids", "text_mask"}
  assert digits_text.decode_text(r["text_ids"]) == r["text"] == train.text(10)
  train_strings = {s for d in range(10) for v in digits_text.text_variants(d).values() for s in v}
  for i in range(0, 1797, 37):
    t, h, d = train.text(i), held.text(i), int(train.identities[i])
    assert t in {s for v in digits_text.text_variants(d).values() for s in v}
    assert h not in train_strings
  assert [train.text(i) for i in range(50)] == [
    digits_text.DigitsTextSource(images, seed=0).text(i) for i in range(50)
  ]


def test_idx_reader_round_trip(tmp_path):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  labels = np.array([7, 1], np.uint8)
  with gzip.open(tmp_path / "img.gz", "wb") as f:
    f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + images.tobytes())
  with open(tmp_path / "lab", "wb") as f:
    f.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2) + labels.tobytes())
  src = digits_text.mnist_idx_source(tmp_path / "img.gz", tmp_path / "lab")
  np.testing.assert_allclose(src[1]["image"][..., 0], images[1] / 255.0)
  assert int(src[0]["identity"]) == 7
  (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
  with pytest.raises(ValueError, match="not an IDX file"):
    digits_text.read_idx(tmp_path / "bad")


def test_real_mnist_test_set(shared_data):
  src = digits_text.mnist_idx_source(
    shared_data / "mnist/t10k-images-idx3-ubyte.gz", shared_data / "mnist/t10k-labels-idx1-ubyte.gz"
  )
  assert len(src) == 10000 and np.bincount(src.identities).min() > 800
  _check_image(src[0]["image"], 1, 28)


def test_lookalike_pairs():
  src = pairs.SyntheticLookalikePairs(6, image_size=24, seed=1)
  r = src[4]
  _check_image(r["image_a"], 3, 24)
  _check_image(r["image_b"], 3, 24)
  assert int(r["identity"]) == 4
  np.testing.assert_array_equal(
    r["image_b"], pairs.SyntheticLookalikePairs(6, image_size=24, seed=1)[4]["image_b"]
  )
  np.testing.assert_array_equal(src.identities, np.arange(6))


def test_array_pair_source_records_and_single_modality_views():
  from jaxsim.data.sources import ArrayPairSource  # noqa: PLC0415

  rng = np.random.default_rng(0)
  a, b = rng.random((4, 5, 5, 3)), rng.random((4, 5, 5, 1))
  src = ArrayPairSource(a, b, np.array([7, 7, 8, 9]), modalities=("face", "fingerprint"))
  assert len(src) == 4 and src[2]["identity"] == 8 and src[2]["image_b"].shape == (5, 5, 1)
  np.testing.assert_array_equal(src.source_b()[3]["image"], b[3].astype(np.float32))
  assert src.source_a().modality == "face"
  with pytest.raises(ValueError, match="ArrayPairSource needs"):
    ArrayPairSource(a, b[:3], np.arange(4))
