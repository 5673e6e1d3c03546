"""Classical baselines: known answers on constructed images, clear errors, and real ORL faces."""

import numpy as np
import pytest
from sklearn import decomposition

from jaxsim import baselines
from jaxsim.evaluate import verification


def _to_images(x: np.ndarray) -> np.ndarray:
  """[N, H, W] arbitrary reals -> float32 [N, H, W, 1] in [0, 1] by one global affine map."""
  lo, hi = x.min(), x.max()
  return ((x - lo) / (hi - lo))[..., None].astype(np.float32)


def _nuisance_classes(num_per_class: int, seed: int, draw_seed: int | None = None):
  """3 classes that differ along two directions, with 10x larger nuisance along a third.

  x = 100 w + mu_class + t v + noise, with w, u1, u2, v orthonormal zero-mean 8x8 patterns,
  class means mu at the vertices of a triangle in span(u1, u2) (norm 1, centred), t ~ N(0, 10)
  and pixel noise 0.05. The large common pattern w keeps per-image standardisation nearly
  linear. Cosine on pixels or on the PCA components is dominated by t; LDA removes it.
  """
  rng = np.random.default_rng(seed)
  basis, _ = np.linalg.qr(rng.normal(size=(64, 5)))
  basis = basis - basis.mean(0)  # zero-mean patterns survive per-image standardisation
  w, u1, u2, v = basis[:, 0], basis[:, 1], basis[:, 2], basis[:, 3]
  rng = rng if draw_seed is None else np.random.default_rng(draw_seed)
  angles = np.deg2rad([90, 210, 330])
  means = np.cos(angles)[:, None] * u1 + np.sin(angles)[:, None] * u2
  ids = np.repeat(np.arange(3), num_per_class)
  t = rng.normal(0, 10, ids.size)
  x = 100 * w + means[ids] + t[:, None] * v + rng.normal(0, 0.05, (ids.size, 64))
  return _to_images(x.reshape(-1, 8, 8)), ids


def _all_pair_auc(baseline, images, ids) -> float:
  a, b = np.triu_indices(len(ids), k=1)
  scores = baselines.pair_scores(baseline, images, {"a": a, "b": b})
  return verification.roc_auc(scores, (ids[a] == ids[b]).astype(int))


def test_fisherfaces_separates_classes_that_fool_pixels_and_eigenfaces():
  train, train_ids = _nuisance_classes(10, seed=0)
  test, test_ids = _nuisance_classes(8, seed=0, draw_seed=1)  # same classes, new images
  fisher = baselines.make_baseline("fisherfaces").fit(train, train_ids)
  assert fisher.lda.n_components == 2  # c - 1
  assert fisher.pca.n_components_ == 30 - 3  # N - c
  assert _all_pair_auc(fisher, test, test_ids) == 1.0
  for name in ("raw_pixels", "eigenfaces"):
    fooled = baselines.make_baseline(name).fit(train, train_ids)
    assert _all_pair_auc(fooled, test, test_ids) < 0.75, name


def test_eigenfaces_keeps_the_components_for_the_asked_variance():
  rng = np.random.default_rng(0)
  # Two strong zero-mean directions and faint pixel noise: 99% of the variance needs
  # exactly the two, and the count is the first k whose cumulative ratio reaches it.
  basis, _ = np.linalg.qr(rng.normal(size=(36, 2)))
  basis -= basis.mean(0)
  t = rng.normal(0, [10, 3], (40, 2))
  x = t @ basis.T + rng.normal(0, 0.01, (40, 36))
  images = _to_images(x.reshape(40, 6, 6))
  ids = np.arange(40) % 4
  model = baselines.Eigenfaces(0.99).fit(images, ids)
  assert model.num_components == 2
  assert model.embed(images).shape == (40, 2)
  first = model.pca.explained_variance_ratio_[0]
  assert baselines.Eigenfaces(first - 0.01).fit(images, ids).num_components == 1
  assert baselines.Eigenfaces(first + 0.01).fit(images, ids).num_components == 2
  assert baselines.Eigenfaces(0.99, max_components=1).fit(images, ids).num_components == 1


def test_raw_pixels_is_cosine_of_standardised_pixels():
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(3, 5, 4, 1)).astype(np.float32)
  model = baselines.make_baseline("raw_pixels").fit(images, [0, 1, 2])
  emb = model.embed(images)
  np.testing.assert_allclose(emb.mean(1), 0, atol=1e-12)
  np.testing.assert_allclose(emb.std(1), 1, atol=1e-12)
  # A brightness and contrast change leaves the embedding unchanged.
  np.testing.assert_allclose(model.embed(0.2 + 0.5 * images), emb, atol=1e-6)
  x, y = images[0].ravel() - images[0].mean(), images[1].ravel() - images[1].mean()
  expected = x @ y / np.linalg.norm(x) / np.linalg.norm(y)
  np.testing.assert_allclose(model.score(emb[:1], emb[1:2]), [expected], rtol=1e-6)


def test_lbp_constant_patch_is_all_flat_code():
  lbp = baselines.LBPHistograms(method="uniform", grid=(2, 2))
  images = np.full((2, 12, 12, 1), 0.4, np.float32)
  emb = lbp.fit(images, [0, 1]).embed(images)
  # Every neighbour >= the centre: all 8 bits set, the uniform code P = 8, in every cell.
  one_cell = np.eye(10)[8]
  np.testing.assert_array_equal(emb, np.tile(one_cell, (2, 4)))
  assert lbp.score(emb[:1], emb[1:]) == 0.0
  # nri_uniform: the 59-bin u2 codes of Ahonen et al.
  assert baselines.LBPHistograms().fit(images, [0, 1]).embed(images).shape == (2, 49 * 59)


def test_lbp_codes_of_a_dark_dot_by_hand():
  patch = np.full((5, 5), 0.6)
  patch[2, 2] = 0.2
  codes = baselines.LBPHistograms(method="uniform").codes(patch)
  # The dot: all 8 neighbours brighter, code 8. Its diagonal neighbours see one darker
  # sample (the dot, 7 ones: code 7); its edge neighbours see the dot and, through the
  # bilinear interpolation of the diagonal samples at radius 1, two more darker samples
  # (5 ones in a row: code 5). The outer ring is dropped.
  np.testing.assert_array_equal(codes, [[7, 5, 7], [5, 8, 5], [7, 5, 7]])
  patch = np.full((5, 5), 0.2)
  patch[2, 2] = 0.6
  assert baselines.LBPHistograms(method="uniform").codes(patch)[1, 1] == 0  # a bright dot


def test_chi_square_matches_a_loop():
  rng = np.random.default_rng(0)
  a, b = rng.uniform(size=(5, 7)), rng.uniform(size=(5, 7))
  a[0, :3] = b[0, :3] = 0  # empty in both: contributes 0
  expected = [
    sum((x - y) ** 2 / (x + y) for x, y in zip(r, s, strict=True) if x + y > 0)
    for r, s in zip(a, b, strict=True)
  ]
  np.testing.assert_allclose(baselines.chi_square_distance(a, b), expected)


def _ridges(kind: str, size: int = 96, angle: float = 0.0, shift=(0.0, 0.0), seed: int = 0):
  """A synthetic fingerprint: ridges at 0.12 cycles/px inside an elliptic finger mask."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size].astype(float) - size / 2
  yy, xx = yy - shift[0], xx - shift[1]
  c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
  x, y = c * xx + s * yy, -s * xx + c * yy
  if kind == "whorl":
    phase = np.hypot(x, y + 8)
  elif kind == "arch":
    phase = y + 12 * np.exp(-(x**2) / 600)
  elif kind == "loop":
    phase = np.hypot(x + 15, y) * (x > -15) + np.abs(y) * (x <= -15)
  else:
    raise ValueError(kind)
  ridges = 0.5 + 0.4 * np.cos(2 * np.pi * 0.12 * phase)
  mask = (xx / 40) ** 2 + (yy / 46) ** 2 < 1
  image = np.where(mask, ridges, 0.95) + rng.normal(0, 0.03, (size, size))
  return np.clip(image, 0, 1).astype(np.float32)[..., None]


def test_fingercode_ranks_an_impression_of_the_same_pattern_first():
  kinds = ("whorl", "arch", "loop")
  reference = np.stack([_ridges(k) for k in kinds])
  impressions = np.stack([_ridges(k, angle=8, shift=(3, -2), seed=1) for k in kinds])
  model = baselines.make_baseline("fingercode").fit(reference, np.arange(3))
  images = np.concatenate([reference, impressions])
  a, b = np.meshgrid(np.arange(3), 3 + np.arange(3), indexing="ij")
  scores = baselines.pair_scores(model, images, {"a": a.ravel(), "b": b.ravel()}).reshape(3, 3)
  # Each reference's best-scoring impression is its own.
  np.testing.assert_array_equal(scores.argmax(axis=1), np.arange(3))
  np.testing.assert_array_equal(scores.argmax(axis=0), np.arange(3))
  # Symmetric in the two sides.
  swapped = baselines.pair_scores(model, images, {"a": b.ravel(), "b": a.ravel()})
  np.testing.assert_allclose(swapped, scores.ravel())


def test_pair_scores_embeds_each_used_image_once():
  images = np.random.default_rng(0).uniform(size=(6, 4, 4, 1)).astype(np.float32)
  model = baselines.make_baseline("raw_pixels").fit(images, np.arange(6))
  calls = []
  embed = model.embed
  model.embed = lambda x: calls.append(len(x)) or embed(x)
  pairs = {"a": np.array([0, 0, 1, 4]), "b": np.array([1, 4, 4, 0]), "label": np.ones(4)}
  scores = baselines.pair_scores(model, images, pairs)
  assert calls == [3]  # images 0, 1, 4
  emb = embed(images)
  np.testing.assert_allclose(scores, model.score(emb[pairs["a"]], emb[pairs["b"]]))


@pytest.mark.parametrize("name", ["raw_pixels", "eigenfaces", "fisherfaces", "lbp", "fingercode"])
def test_every_baseline_has_the_interface(name):
  model = baselines.make_baseline(name)
  assert isinstance(model, baselines.Baseline)
  assert model.name == name
  with pytest.raises(RuntimeError, match="call fit"):
    model.embed(np.zeros((1, 32, 32, 1), np.float32))


def test_grey_images_are_the_float64_channel_mean_bit_for_bit():
  rgb = np.random.default_rng(3).random((5, 9, 7, 3), dtype=np.float32)
  grey = baselines._check_images(rgb)
  assert grey.dtype == np.float64
  np.testing.assert_array_equal(grey, rgb.astype(np.float64).mean(axis=-1))
  np.testing.assert_array_equal(baselines._check_images(rgb[..., :1]), rgb[..., 0])


def test_bad_input_errors_say_what_to_do():
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(6, 32, 32, 1)).astype(np.float32)
  with pytest.raises(ValueError, match="at least 2 identities"):
    baselines.make_baseline("fisherfaces").fit(images, np.zeros(6, int))
  with pytest.raises(ValueError, match="single image"):
    baselines.make_baseline("fisherfaces").fit(images[:3], np.arange(3))
  with pytest.raises(ValueError, match="at least 2 training images"):
    baselines.make_baseline("raw_pixels").fit(images[:1], [0])
  with pytest.raises(ValueError, match="mixed sizes"):
    baselines.make_baseline("lbp").fit([images[0], images[1, :16]], [0, 1])
  with pytest.raises(ValueError, match="one identity per image"):
    baselines.make_baseline("eigenfaces").fit(images, [0, 1])
  with pytest.raises(ValueError, match="divide 8-bit images by 255"):
    baselines.make_baseline("lbp").fit((images * 255).astype(np.uint8), np.arange(6))
  with pytest.raises(ValueError, match="divide 8-bit images by 255"):
    baselines.make_baseline("lbp").fit(images * 255, np.arange(6))
  with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
    baselines.make_baseline("lbp").fit(images[..., 0], np.arange(6))
  model = baselines.make_baseline("eigenfaces").fit(images, np.arange(6) % 2)
  with pytest.raises(ValueError, match="resize them to the training size"):
    model.embed(images[:, :16, :16])
  with pytest.raises(ValueError, match="unknown baseline"):
    baselines.make_baseline("sift")


def test_real_orl_faces_beat_chance_and_fisherfaces_beats_its_pixels(shared_data):
  from jaxsim.data import splits
  from jaxsim.data.sources import identity_folder_source

  source = identity_folder_source(shared_data / "orl_faces", image_size=(56, 46))
  images = np.stack([source[i]["image"] for i in range(len(source))])
  ids = np.asarray(source.identities)
  _, records = splits.split_records(ids, counts={"train": 20, "val": 10, "test": 10}, seed=0)
  train, test = records["train"], records["test"]
  aucs = {}
  for name, options in [("raw_pixels", {}), ("fisherfaces", {"pca_components": 40})]:
    model = baselines.make_baseline(name, **options).fit(images[train], ids[train])
    aucs[name] = _all_pair_auc(model, images[test], ids[test])
  # Seed 0 measured 0.903 (raw) and 0.95 (Fisherfaces, PCA 40) at this size.
  assert aucs["raw_pixels"] > 0.85
  assert aucs["fisherfaces"] > aucs["raw_pixels"]


def test_baseline_report_chooses_on_validation_and_gives_subject_intervals():
  rng = np.random.default_rng(0)
  ids = np.repeat(np.arange(12), 4)
  centres = rng.uniform(0.2, 0.8, (12, 1, 8, 8, 1))
  images = np.clip(centres[ids, 0] + rng.normal(0, 0.05, (ids.size, 8, 8, 1)), 0, 1)
  images = images.astype(np.float32)
  records = {"train": np.arange(24), "val": np.arange(24, 36), "test": np.arange(36, 48)}

  def all_pairs(r):
    a, b = np.triu_indices(r.size, k=1)
    return {"a": r[a], "b": r[b], "label": (ids[r[a]] == ids[r[b]]).astype(np.int32)}

  out = baselines.baseline_report(
    ("raw_pixels", "fisherfaces"),
    images,
    ids,
    records["train"],
    all_pairs(records["val"]),
    all_pairs(records["test"]),
    num_resamples=20,
  )
  assert set(out) == {"raw_pixels", "fisherfaces"}
  for r in out.values():
    assert 0.0 <= r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"] <= 1.0
    assert r["num_subjects"] == 3 and r["val_auc"] > 0.5
  assert out["fisherfaces"]["options"]["pca_components"] in (20, 40, 80)


def test_fuse_with_best_fuses_the_learned_scores_with_the_best_on_validation():
  rng = np.random.default_rng(1)
  ids = np.arange(40)
  n = 3000
  a, b = rng.integers(0, 40, (2, n))
  label = rng.integers(0, 2, n)
  b = np.where(label == 1, a, (a + rng.integers(1, 40, n)) % 40)
  val = {"a": a, "b": b, "label": label}
  signal = {s: label + rng.normal(0, 1, n) for s in ("val", "test")}
  learned = {s: label + rng.normal(0, 1, n) for s in ("val", "test")}  # as good, independent
  found = {s: {"good": signal[s], "noise": rng.normal(0, 1, n)} for s in ("val", "test")}
  rows = {"good": {"val_auc": 0.76}, "noise": {"val_auc": 0.50}}
  best, out = baselines.fuse_with_best(rows, found, learned, ids, val, seed=0)
  assert best == "good" and out["fused"] and 0.3 <= out["weight"] <= 0.7
  z = [(x["test"] - x["val"].mean()) / x["val"].std() for x in (learned, signal)]
  expected = out["weight"] * z[0] + (1 - out["weight"]) * z[1]
  np.testing.assert_allclose(out["scores"]["test"], expected, atol=1e-9)


def test_identification_report_finds_separable_identities():
  # Twelve identities, each a distinct brightness pattern plus little noise: raw pixels
  # put every enrolled probe's own identity first.
  rng = np.random.default_rng(0)
  ids = np.repeat(np.arange(12), 6)
  levels = rng.uniform(0.1, 0.9, size=(12, 1, 8, 8, 1))
  images = np.clip(levels[ids, 0] + rng.normal(0, 0.01, (ids.size, 8, 8, 1)), 0, 1)
  images[:, :4] = np.clip(images[:, :4] * np.arange(1, 9)[None, None, :, None] / 8, 0, 1)
  train = np.flatnonzero(ids < 6)
  enrolled = np.flatnonzero((ids >= 6) & (ids < 9))
  gallery = enrolled[::3]
  rest = np.setdiff1d(enrolled, gallery)
  outsiders = np.flatnonzero(ids >= 9)
  probes = {"val": np.r_[rest[::2], outsiders[ids[outsiders] == 9]]}
  probes["test"] = np.r_[rest[1::2], outsiders[ids[outsiders] > 9]]
  out = baselines.identification_report(
    ["raw_pixels"], images.astype(np.float32), ids, train, gallery, probes, 0.5, 50, 0
  )
  row = out["raw_pixels"]
  assert row["cmc_rank_1"] == 1.0
  assert {"dir_ci_low", "dir_ci_high", "fpir", "threshold", "val_dir"} <= set(row)


def test_pair_scores_and_score_matrix_in_chunks_equal_one_pass(monkeypatch):
  """Scoring in chunks of `_PAIR_CHUNK` pairs gives the one-pass scores, across chunk edges."""
  monkeypatch.setattr(baselines, "_GRAM_PAIRS", 0)  # the chunked path, not the Gram matrix
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(30, 6, 6, 1)).astype(np.float32)
  model = baselines.make_baseline("raw_pixels").fit(images, np.arange(30) % 5)
  p = 2 * baselines._PAIR_CHUNK + 7
  pairs = {"a": rng.integers(0, 30, p), "b": rng.integers(0, 30, p)}
  emb = model.embed(images)
  expected = model.score(emb[pairs["a"]], emb[pairs["b"]])
  np.testing.assert_allclose(baselines.pair_scores(model, images, pairs), expected, rtol=1e-12)
  q, g = emb[:25], np.repeat(emb, 4, axis=0)[:120]  # 25 x 120 > one chunk
  full = np.array([[model.score(x[None], y[None])[0] for y in g] for x in q])
  np.testing.assert_allclose(baselines.score_matrix(model, q, g), full, rtol=1e-12)


def test_cosine_pair_scores_from_the_gram_matrix_equal_the_row_formula(monkeypatch):
  # Many pairs of few images are scored from blocks of the Gram matrix of unit rows: the
  # row-wise cosine to rounding, across block edges, with a zero row scoring 0.
  monkeypatch.setattr(baselines, "_GRAM_ROWS", 7)
  rng = np.random.default_rng(2)
  images = rng.uniform(size=(20, 5, 5, 1)).astype(np.float32)
  images[3] = 0.5  # a constant image: a zero row after standardising
  model = baselines.make_baseline("raw_pixels").fit(images, np.arange(20) % 4)
  pairs = {"a": rng.integers(0, 20, 300), "b": rng.integers(0, 20, 300)}
  pairs["a"][:5] = 3
  emb = model.embed(images)
  expected = baselines.cosine_similarity(emb[pairs["a"]], emb[pairs["b"]])
  got = baselines.pair_scores(model, images, pairs)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
  assert np.all(got[:5] == 0.0)
  monkeypatch.setattr(baselines, "_GRAM_PAIRS", 0)  # the chunked row formula instead
  np.testing.assert_array_equal(baselines.pair_scores(model, images, pairs), expected)


def test_pair_scores_on_threads_equal_one_thread(monkeypatch):
  # Long pair lists are scored chunk by chunk on threads; the scores are bit-identical.
  rng = np.random.default_rng(3)
  images = rng.uniform(size=(12, 16, 16, 1)).astype(np.float32)
  model = baselines.make_baseline("lbp").fit(images, np.arange(12) % 3)
  pairs = {"a": rng.integers(0, 12, 3000), "b": rng.integers(0, 12, 3000)}
  monkeypatch.setattr(baselines, "_PAIR_CHUNK", 64)
  one = baselines.pair_scores(model, images, pairs)
  monkeypatch.setattr(baselines, "_THREADED_PAIRS", 1)
  monkeypatch.setattr(baselines.host_threads, "usable", lambda limit: 3)
  np.testing.assert_array_equal(baselines.pair_scores(model, images, pairs), one)


def test_pca_of_any_size_is_sklearns_and_the_svd_runs_once_per_matrix(monkeypatch):
  # Eigenfaces and every Fisherfaces candidate fit a PCA of the same training pixels;
  # one full SVD serves them all, with exactly sklearn's numbers for each size.
  monkeypatch.setattr(baselines, "_LEADING_MIN", 1000)  # this matrix is small: the full SVD
  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 80)) @ rng.normal(size=(80, 80))
  y = rng.normal(size=(5, 80))
  fits = []
  real_fit = decomposition.PCA.fit
  monkeypatch.setattr(decomposition.PCA, "fit", lambda self, a: fits.append(1) or real_fit(self, a))
  baselines._PCA_CACHE.clear()
  for k in (5, 20, 59):
    mine = baselines._pca(x, k)
    ref = real_fit(decomposition.PCA(n_components=k, svd_solver="full"), x)
    np.testing.assert_array_equal(mine.transform(y), ref.transform(y))
    np.testing.assert_array_equal(mine.explained_variance_ratio_, ref.explained_variance_ratio_)
  assert len(fits) == 1
  baselines._pca(x + 1e-3, 5)  # another matrix: a new SVD
  assert len(fits) == 2


@pytest.mark.parametrize("shape", [(60, 80), (80, 60)])
def test_leading_pca_equals_sklearns_full_pca_on_large_matrices(monkeypatch, shape):
  # On a large matrix a PCA of at most _LEADING components computes only those (from the
  # Gram or covariance matrix's top eigenpairs): sklearn's full-SVD PCA to rounding, with
  # the same signs, ratios and transform; more components fall back to the full SVD.
  monkeypatch.setattr(baselines, "_LEADING", 12)
  monkeypatch.setattr(baselines, "_LEADING_MIN", 40)
  rng = np.random.default_rng(1)
  x = (rng.normal(size=shape) * np.geomspace(3.0, 0.1, shape[1])) @ rng.normal(
    size=(shape[1], shape[1])
  )
  y = rng.normal(size=(7, shape[1]))
  baselines._PCA_CACHE.clear()
  for k in (12, 3):  # one leading decomposition serves both sizes
    mine = baselines._pca(x, k)
    assert mine.n_components_ == k and next(iter(baselines._PCA_CACHE.values())).n_components_ == 12
    ref = decomposition.PCA(n_components=k, svd_solver="full").fit(x)
    for name in ("components_", "explained_variance_", "explained_variance_ratio_", "mean_"):
      np.testing.assert_allclose(getattr(mine, name), getattr(ref, name), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine.transform(y), ref.transform(y), rtol=1e-9, atol=1e-10)
    if k == 12:  # noise_variance_ is kept for the size computed only
      np.testing.assert_allclose(mine.noise_variance_, ref.noise_variance_, rtol=1e-9)
  full = baselines._pca(x, 20)  # more than _LEADING: the exact full SVD, bit for bit
  ref = decomposition.PCA(n_components=20, svd_solver="full").fit(x)
  np.testing.assert_array_equal(full.transform(y), ref.transform(y))
