"""Omniglot: the zip / folder loader, the alphabet-and-drawer split, the one-shot runs
(builder, reader, scoring) and the episodes, on a tiny constructed alphabet set."""

import io
import pathlib
import zipfile

import numpy as np
import pytest
from PIL import Image

from jaxsim import report
from jaxsim.data import pipeline, splits
from jaxsim.data.sources import omniglot
from jaxsim.evaluate import oneshot

ALPHABETS = {"Alpha": 4, "Beta": 3, "Gamma_(x)": 2}  # characters per alphabet
DRAWERS = 5


def _glyph(alphabet: int, character: int, drawer: int) -> Image.Image:
  """A 105x105 1-bit image: a black bar whose place codes the character, on white."""
  a = np.full((105, 105), 255, np.uint8)
  top = 10 + 20 * character
  left = 10 + 25 * alphabet + drawer  # drawers shift the bar by a pixel
  a[top : top + 10, left : left + 20] = 0
  return Image.fromarray(a).convert("1")


def _files():
  for ai, (alphabet, n) in enumerate(ALPHABETS.items()):
    for ci in range(n):
      for d in range(1, DRAWERS + 1):
        buf = io.BytesIO()
        _glyph(ai, ci, d).save(buf, format="PNG")
        name = f"{alphabet}/character{ci + 1:02d}/{100 * ai + ci:04d}_{d:02d}.png"
        yield name, buf.getvalue()


@pytest.fixture
def omniglot_zip(tmp_path) -> pathlib.Path:
  path = tmp_path / "images_background.zip"
  with zipfile.ZipFile(path, "w") as z:
    for name, data in _files():
      z.writestr("images_background/" + name, data)
    z.writestr("images_background/README.txt", "not an image")
  return path


@pytest.fixture
def omniglot_folder(tmp_path) -> pathlib.Path:
  root = tmp_path / "unpacked"
  for name, data in _files():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
  return root


def test_loader_reads_zip_and_folder_alike(omniglot_zip, omniglot_folder):
  z = omniglot.load_omniglot(omniglot_zip, image_size=21)
  f = omniglot.load_omniglot(omniglot_folder, image_size=21)
  assert z.alphabet_names == ["Alpha", "Beta", "Gamma_(x)"] == f.alphabet_names
  assert len(z) == sum(ALPHABETS.values()) * DRAWERS == len(f)
  assert z.images.shape == (len(z), 21, 21, 1)
  np.testing.assert_array_equal(z.images, f.images)
  np.testing.assert_array_equal(z.identities, f.identities)
  # Ink is 1, paper 0; nine characters, alphabets and drawers per record.
  assert z.images.max() == pytest.approx(1.0) and z.images.min() == 0.0
  assert z.images.mean() < 0.2
  assert len(np.unique(z.identities)) == 9
  assert np.bincount(z.character_alphabet).tolist() == [4, 3, 2]
  np.testing.assert_array_equal(z.alphabets, z.character_alphabet[z.identities])
  assert sorted(np.unique(z.drawers)) == [1, 2, 3, 4, 5]
  assert z.character_names[0] == "Alpha/character01"
  # The original PNG bytes come back unchanged.
  name = z.members[7]
  with zipfile.ZipFile(omniglot_zip) as zf:
    assert z.png_bytes(7) == zf.read(name)
  # Several sizes from one decode equal one load per size, and `decode_png` per file.
  both = omniglot.load_omniglot_sizes(omniglot_zip, (105, 21))
  np.testing.assert_array_equal(both[21].images, z.images)
  np.testing.assert_array_equal(both[21].identities, z.identities)
  with zipfile.ZipFile(omniglot_zip) as zf:
    one = omniglot.decode_png(zf.read(name), 105, name)
  np.testing.assert_array_equal(both[105].images[7, ..., 0], one)


def test_loader_errors_name_the_path_and_how_to_pass_one(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"nowhere\.zip does not exist.*config\.data\.root"):
    omniglot.load_omniglot(tmp_path / "nowhere.zip")
  bogus = tmp_path / "notes.zip"
  bogus.write_text("hello")
  with pytest.raises(ValueError, match=r"notes\.zip is a file but not a zip"):
    omniglot.load_omniglot(bogus)
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match=r"empty holds no <Alphabet>/<character>"):
    omniglot.load_omniglot(tmp_path / "empty")
  bad = tmp_path / "bad" / "A" / "character01"
  bad.mkdir(parents=True)
  (bad / "0001_01.png").write_bytes(b"not a png")
  with pytest.raises(ValueError, match=r"0001_01\.png"):
    omniglot.load_omniglot(tmp_path / "bad")


def test_split_is_disjoint_in_alphabets_and_drawers(omniglot_zip):
  src = omniglot.load_omniglot(omniglot_zip, image_size=16)
  out = splits.group_and_drawer_split(
    src.identities,
    src.alphabets,
    src.drawers,
    num_val=1,
    num_test=1,
    num_train_drawers=3,
    min_eval_classes=3,
    seed=0,
  )
  g, d, r = out["groups"], out["drawers"], out["records"]
  # Only Alpha and Beta have 3 characters: they are val and test; Gamma trains.
  assert sorted([*g["val"], *g["test"]]) == [0, 1] and g["train"].tolist() == [2]
  assert len(d["train"]) == 3 and len(d["eval"]) == 2
  assert not set(d["train"]) & set(d["eval"])
  for split, drawers in (("train", d["train"]), ("val", d["eval"]), ("test", d["eval"])):
    assert set(src.alphabets[r[split]]) <= set(g[split])
    assert set(src.drawers[r[split]]) <= set(drawers)
  assert not set(src.identities[r["val"]]) & set(src.identities[r["test"]])
  counts = splits.group_and_drawer_counts(out, src.identities, "alphabets", "characters")
  assert counts["num_alphabets_train"] == 1 == counts["num_alphabets_test"]
  assert counts["num_images_val"] == len(r["val"]) and counts["num_train_drawers"] == 3
  assert counts["num_characters_val"] == len(np.unique(src.identities[r["val"]])) >= 3
  with pytest.raises(ValueError, match="groups with at least 4 classes"):
    splits.group_and_drawer_split(
      src.identities,
      src.alphabets,
      src.drawers,
      num_val=1,
      num_test=1,
      num_train_drawers=3,
      min_eval_classes=4,
    )


def test_validation_folds_keep_the_test_alphabets_and_rotate_validation():
  groups = np.repeat(np.arange(8), 12)  # 8 alphabets x 3 characters x 4 drawers
  classes, drawers = np.arange(96) // 4, np.tile(np.arange(4), 24)
  kw = {"num_val": 2, "num_test": 2, "num_train_drawers": 2, "seed": 3}
  base = splits.group_and_drawer_split(classes, groups, drawers, **kw)
  np.testing.assert_equal(
    splits.group_and_drawer_split(classes, groups, drawers, val_fold=0, **kw), base
  )
  seen = set(base["groups"]["val"].tolist())
  for fold in (1, 2):
    out = splits.group_and_drawer_split(classes, groups, drawers, val_fold=fold, **kw)
    g = out["groups"]
    np.testing.assert_array_equal(g["test"], base["groups"]["test"])
    np.testing.assert_array_equal(out["drawers"]["eval"], base["drawers"]["eval"])
    assert not set(g["val"].tolist()) & seen  # a new block of validation alphabets
    assert set(base["groups"]["val"].tolist()) <= set(g["train"].tolist())  # fold 0's train
    assert sorted([*g["train"], *g["val"], *g["test"]]) == list(range(8))
    seen |= set(g["val"].tolist())
  with pytest.raises(ValueError, match="split.val_fold=3 .* use a fold from 0 to 2"):
    splits.group_and_drawer_split(classes, groups, drawers, val_fold=3, **kw)


def test_run_files_make_the_standard_layout(omniglot_zip, tmp_path):
  src = omniglot.load_omniglot(omniglot_zip, image_size=16)
  keep = np.flatnonzero(src.alphabets == 0)  # Alpha: 4 characters
  files = oneshot.run_files(
    lambda i: src.png_bytes(keep[i]),
    src.identities[keep],
    src.drawers[keep],
    src.alphabets[keep],
    num_runs=3,
    way=4,
    seed=1,
  )
  root = tmp_path / "runs"
  report.write_files(files, root)
  runs = oneshot.read_runs(root)
  assert sorted(p.name for p in root.iterdir()) == ["run01", "run02", "run03"]
  files = sorted(p.relative_to(root / "run02").as_posix() for p in (root / "run02").rglob("*"))
  assert files == sorted(
    ["class_labels.txt", "test", "training"]
    + [f"training/class{j:02d}.png" for j in range(1, 5)]
    + [f"test/item{k:02d}.png" for k in range(1, 5)]
  )
  lines = (root / "run02" / "class_labels.txt").read_text().splitlines()
  assert len(lines) == 4 and lines[0].startswith("run02/test/item01.png run02/training/class")
  by_bytes = {src.png_bytes(i): i for i in keep}
  for line in lines:
    test_item, training = line.split()
    a, b = by_bytes[(root / test_item).read_bytes()], by_bytes[(root / training).read_bytes()]
    assert src.identities[a] == src.identities[b]  # the label names the same character
    assert src.drawers[a] != src.drawers[b]  # by another drawer
  assert (
    len({src.drawers[by_bytes[p.read_bytes()]] for p in (root / "run02/training").iterdir()}) == 1
  )
  assert [r.name for r in runs] == ["run01", "run02", "run03"]
  assert all(sorted(r.label.tolist()) == [0, 1, 2, 3] for r in runs)


def _hand_made_run(root: pathlib.Path) -> None:
  """run01: 3 training classes (bars at rows 10, 50, 90) and 3 test items."""
  for sub in ("training", "test"):
    (root / "run01" / sub).mkdir(parents=True)

  def bar(row, shift):
    a = np.full((105, 105), 255, np.uint8)
    a[row : row + 8, 20 + shift : 60 + shift] = 0
    return Image.fromarray(a)

  for j, row in enumerate((10, 50, 90), 1):
    bar(row, 0).save(root / "run01" / "training" / f"class{j:02d}.png")
  # item01 is class03, item02 class01, item03 class02
  for k, row in enumerate((90, 10, 50), 1):
    bar(row, 3).save(root / "run01" / "test" / f"item{k:02d}.png")
  (root / "run01" / "class_labels.txt").write_text(
    "run01/test/item01.png run01/training/class03.png\n"
    "run01/test/item02.png run01/training/class01.png\n"
    "run01/test/item03.png run01/training/class02.png\n"
  )


def _row_of_ink(root):
  def features_of(paths):
    images = [omniglot.decode_png(root / p, 105, p) for p in paths]
    return np.array([[np.argmax(im.sum(1))] for im in images], np.float64)

  return features_of


def test_score_runs_on_a_hand_made_three_way_run(tmp_path):
  _hand_made_run(tmp_path)
  runs = oneshot.read_runs(tmp_path)
  assert runs[0].label.tolist() == [2, 0, 1]
  out = oneshot.score_runs(runs, _row_of_ink(tmp_path), oneshot.prototype_scorer("euclidean"))
  assert out["accuracy"] == 1.0 and out["per_run"] == [1.0]
  assert out["predictions"] == [[2, 0, 1]]
  # A scorer that prefers the farthest row gets every item wrong.
  wrong = oneshot.score_runs(
    runs, _row_of_ink(tmp_path), lambda q, s: -oneshot.prototype_scorer()(q, s)
  )
  assert wrong["accuracy"] == 0.0


def test_pixel_baseline_chooses_on_validation_and_scores_episodes_and_runs(tmp_path):
  # Class c is a bar of length 4 + 2 c at row 2 c, shifted d pixels sideways by drawer d.
  # On validation the drawers also change the ink (0.02 to 1): a faint query is nearest,
  # in Euclidean distance, to the shortest bar, while cosine ignores the ink. On test the
  # ink is constant and every option is exact, so only validation can choose cosine.
  classes, drawers = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
  val, test = (np.zeros((24, 16, 16, 1), np.float32) for _ in range(2))
  for i, (c, d) in enumerate(zip(classes, drawers, strict=True)):
    val[i, 2 * c : 2 * c + 2, d : d + 4 + 2 * c] = (0.02, 0.1, 0.5, 1.0)[d]
    test[i, 2 * c : 2 * c + 2, d : d + 4 + 2 * c] = 1.0
  eps = oneshot.sample_episodes(classes, drawers, way=5, shot=1, queries=1, num=40, seed=1)
  _hand_made_run(tmp_path)
  runs = {"one_shot_runs": (tmp_path, oneshot.read_runs(tmp_path))}

  def read(root, paths):
    return np.stack([omniglot.decode_png(root / p, 105, p) for p in paths])[..., None]

  out = oneshot.pixel_baseline(val, eps, test, {(5, 1): eps}, runs, read)
  acc = out["val_accuracy"]
  assert set(acc) == {"euclidean_none", "euclidean_supports", "cosine_none", "cosine_supports"}
  assert (out["metric"], out["center"]) == ("cosine", "none")
  assert acc["cosine_none"] == 1.0 > acc["euclidean_none"]
  assert out["episodes"]["5way_1shot"]["accuracy"] == 1.0
  assert out["one_shot_runs"]["accuracy"] == 1.0 and "scores" not in out["one_shot_runs"]
  assert out["one_shot_runs"]["root"] == str(tmp_path)


@pytest.mark.parametrize(
  "break_it, message",
  [
    (lambda r: (r / "run01/class_labels.txt").unlink(), r"run01 has no class_labels\.txt"),
    (
      lambda r: (r / "run01/class_labels.txt").write_text(
        "run01/test/item01.png run01/training/class07.png\n"
      ),
      r"class_labels\.txt line 1 names run01/training/class07\.png, which does not exist",
    ),
    (lambda r: (r / "run01/test/item03.png").unlink(), r"line 3 names run01/test/item03\.png"),
    (
      lambda r: (r / "run01/class_labels.txt").write_text(
        "run01/test/item01.png run01/training/class03.png\n"
      ),
      r"names 1 training image\(s\) but .*run01/training holds 3",
    ),
    (lambda r: (r / "run01/class_labels.txt").write_text("one two three\n"), r"line 1: expected"),
  ],
)
def test_bad_runs_raise_a_clear_error_naming_the_file(tmp_path, break_it, message):
  _hand_made_run(tmp_path)
  break_it(tmp_path)
  with pytest.raises((FileNotFoundError, ValueError), match=message):
    oneshot.read_runs(tmp_path)


def test_read_runs_on_a_missing_or_empty_folder(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"nothere does not exist.*eval\.runs_root"):
    oneshot.read_runs(tmp_path / "nothere")
  with pytest.raises(FileNotFoundError, match="holds no runNN"):
    oneshot.read_runs(tmp_path)


def test_episodes_keep_support_and_query_drawers_apart_and_score_exactly():
  # 2 groups x 6 classes x 4 drawers; feature = class id, so the prototype scorer is exact.
  classes = np.repeat(np.arange(12), 4)
  drawers = np.tile(np.arange(1, 5), 12)
  groups = classes // 6
  eps = oneshot.sample_episodes(
    classes, drawers, way=5, shot=2, queries=1, num=50, groups=groups, seed=3
  )
  assert eps.support.shape == (50, 5, 2) and eps.query.shape == (50, 5, 1)
  for e in range(50):
    assert len(set(groups[eps.support[e].ravel()])) == 1
    assert not set(drawers[eps.support[e].ravel()]) & set(drawers[eps.query[e].ravel()])
    np.testing.assert_array_equal(classes[eps.support[e][:, 0]], classes[eps.query[e][:, 0]])
  feats = classes[:, None].astype(float)
  out = oneshot.episode_accuracy(feats, eps, oneshot.prototype_scorer())
  assert out["accuracy"] == 1.0 and out["num_episodes"] == 50
  with pytest.raises(ValueError, match="need a group with 7 classes"):
    oneshot.sample_episodes(classes, drawers, way=7, shot=1, queries=1, num=1, groups=groups)


def test_support_centring_removes_what_the_classes_share():
  # Both classes share a large first coordinate (one alphabet's style); centred on the
  # supports' mean, only the coordinates that tell them apart are left.
  s = np.array([[[10.0, 1.0, 0.0]], [[10.0, 0.0, 1.0]]])
  q = np.array([[10.0, 0.6, 0.4]])
  np.testing.assert_allclose(oneshot.prototype_scorer("cosine", "supports")(q, s), [[1.0, -1.0]])
  plain = oneshot.prototype_scorer("cosine")(q, s)
  assert plain.min() > 0.99  # uncentred, both classes look alike
  # A shift shared by every feature changes nothing once centred on the supports.
  rng = np.random.default_rng(0)
  q, s, shift = rng.normal(size=(6, 4)), rng.normal(size=(5, 3, 4)), rng.normal(size=4)
  for metric in ("cosine", "euclidean"):
    score = oneshot.prototype_scorer(metric, "supports")
    np.testing.assert_allclose(score(q + shift, s + shift), score(q, s), atol=1e-12)
  with pytest.raises(ValueError, match="center must be an array, 'supports' or None"):
    oneshot.prototype_scorer("cosine", "queries")


def test_power_transform_is_applied_before_centring():
  np.testing.assert_allclose(oneshot.power_features(np.array([-4.0, 9.0, 0.0]), 0.5), [-2, 3, 0])
  x = np.array([[1.0, 2.0]])
  np.testing.assert_array_equal(oneshot.power_features(x, 1.0), x)
  # Euclidean prototypes in the square-root space, centred on a mean taken there too.
  q = np.array([[4.0, 0.0]])
  s = np.array([[[0.0, 0.0], [16.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
  center = np.array([1.0, 1.0])
  # sqrt: q = (2, 0); class 0 = mean((0,0), (4,0)) = (2,0); class 1 = (1,1); the centre
  # cancels in a difference, so the distances are 0 and 2.
  score = oneshot.prototype_scorer("euclidean", center, power=0.5)
  np.testing.assert_allclose(score(q, s), [[0.0, -2.0]])
  # With a cosine the order matters: power, then centre, then normalise.
  rng = np.random.default_rng(1)
  q, s, center = rng.uniform(size=(3, 4)), rng.uniform(size=(2, 2, 4)), rng.uniform(size=4)
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
  protos = unit(unit(np.sqrt(s) - center).mean(1))
  expected = unit(np.sqrt(q) - center) @ protos.T
  np.testing.assert_allclose(oneshot.prototype_scorer("cosine", center, 0.5)(q, s), expected)
  for bad in (0.0, -1.0):
    with pytest.raises(ValueError, match="power must be > 0"):
      oneshot.prototype_scorer("cosine", None, power=bad)


def test_within_class_whitening_whitens_the_scatter_and_reorders_the_classes():
  rng = np.random.default_rng(2)
  # 40 classes x 30 samples; drawings of one class vary 10x more along the first axis.
  labels = np.repeat(np.arange(40), 30)
  means = rng.normal(size=(40, 3))
  x = means[labels] + rng.normal(size=(1200, 3)) * np.array([10.0, 1.0, 1.0])
  w = oneshot.within_class_whitening(x, labels, shrinkage=1e-9)
  residual = x - means[labels]
  whitened = np.cov((residual @ w).T)
  np.testing.assert_allclose(whitened, np.eye(3), atol=0.1)
  # W W^T is the inverse of the pooled within-class covariance.
  centred = x - np.stack([x[labels == c].mean(0) for c in range(40)])[labels]
  scatter = centred.T @ centred / (1200 - 40)
  np.testing.assert_allclose(w @ w.T, np.linalg.inv(scatter), rtol=1e-6)
  # Full shrinkage: a multiple of the identity (only the scale changes).
  w1 = oneshot.within_class_whitening(x, labels, shrinkage=1.0)
  np.testing.assert_allclose(w1, w1[0, 0] * np.eye(3), atol=1e-12)
  # A query of class 0 that differs from it only along the noisy axis, and a class 1
  # near it along that axis but apart on a clean one: Euclidean prototypes pick the
  # wrong class, the whitened ones the right one.
  s = np.array([[[0.0, 0.0, 0.0]], [[5.0, 2.0, 0.0]]])
  q = np.array([[6.0, 0.0, 0.0]])
  assert oneshot.prototype_scorer("euclidean")(q, s).argmax() == 1
  assert oneshot.prototype_scorer("euclidean")(q @ w, s @ w).argmax() == 0
  for bad in (0.0, 1.5):
    with pytest.raises(ValueError, match="shrinkage must be in"):
      oneshot.within_class_whitening(x, labels, bad)
  with pytest.raises(ValueError, match="at least two samples"):
    oneshot.within_class_whitening(x[:3], np.arange(3))


def test_fit_prototype_scoring_maps_features_once_as_whitening_inside_each_trial():
  rng = np.random.default_rng(3)
  feats, labels = rng.uniform(size=(60, 4)), np.repeat(np.arange(12), 5)
  q, s = rng.uniform(size=(3, 4)), rng.uniform(size=(2, 2, 4))
  fmap, scorer = oneshot.fit_prototype_scoring("cosine", "train", 0.5, 0.0, feats, labels)
  mean = oneshot.power_features(feats, 0.5).mean(0)
  expected = oneshot.prototype_scorer("cosine", mean, 0.5)(q, s)
  np.testing.assert_allclose(scorer(fmap(q), fmap(s)), expected, atol=1e-5)
  # Whitening mapped once per feature = power, centre on the supports, whiten, per trial.
  fmap, scorer = oneshot.fit_prototype_scoring("cosine", "supports", 0.5, 0.5, feats, labels)
  w = oneshot.within_class_whitening(oneshot.power_features(feats, 0.5), labels, 0.5)
  pq, ps = oneshot.power_features(q, 0.5), oneshot.power_features(s, 0.5)
  c = ps.reshape(-1, 4).mean(0)
  expected = oneshot.prototype_scorer("cosine")((pq - c) @ w, (ps - c) @ w)
  np.testing.assert_allclose(scorer(fmap(q), fmap(s)), expected, atol=1e-5)
  fmap, plain = oneshot.fit_prototype_scoring("euclidean", "none")
  np.testing.assert_allclose(plain(fmap(q), fmap(s)), oneshot.prototype_scorer("euclidean")(q, s))
  with pytest.raises(ValueError, match="needs train_features"):
    oneshot.fit_prototype_scoring("cosine", "supports", whiten=0.5)
  with pytest.raises(ValueError, match="center must be"):
    oneshot.fit_prototype_scoring("cosine", "queries")


def test_pair_scorer_averages_over_shots():
  q = np.array([[0.0], [10.0]])
  s = np.array([[[0.0], [2.0]], [[10.0], [10.0]]])  # class 0 mean distance 1, class 1: 10
  scores = oneshot.pair_scorer(lambda a, b: -np.abs(a - b)[:, 0])(q, s)
  np.testing.assert_allclose(scores, [[-1.0, -10.0], [-9.0, 0.0]])


def test_koch_affine_is_deterministic_and_keeps_ink_in_range():
  image = np.zeros((28, 28, 1), np.float32)
  image[10:18, 6:22] = 1.0
  a = pipeline.augment_image(image, np.random.default_rng(5), "character")
  b = pipeline.augment_image(image, np.random.default_rng(5), "character")
  np.testing.assert_array_equal(a, b)
  assert a.shape == image.shape and a.dtype == np.float32
  assert 0.0 <= a.min() and a.max() <= 1.0
  moved = [
    not np.allclose(pipeline.augment_image(image, np.random.default_rng(s), "character"), image)
    for s in range(8)
  ]
  assert sum(moved) >= 6  # each of four parts is drawn with probability 1/2
  assert abs(a.sum() - image.sum()) < 0.5 * image.sum()  # the stroke stays in the frame


def test_elastic_distortion_is_smooth_deterministic_and_zero_at_strength_zero():
  image = np.zeros((28, 28, 1), np.float32)
  image[6:22, 13:15] = 1.0  # a vertical stroke
  np.testing.assert_allclose(
    pipeline.elastic_distortion(image, np.random.default_rng(0), strength=0.0), image, atol=1e-6
  )
  a = pipeline.elastic_distortion(image, np.random.default_rng(3))
  np.testing.assert_array_equal(a, pipeline.elastic_distortion(image, np.random.default_rng(3)))
  assert a.shape == image.shape and a.dtype == np.float32 and 0.0 <= a.min() <= a.max() <= 1.0
  assert not np.allclose(a, image)
  # A smooth warp of about 1 px bends the stroke; it does not scatter it.
  cols = [np.average(np.arange(28), weights=a[r, :, 0]) for r in range(8, 20) if a[r].sum() > 0.5]
  assert len(cols) >= 10 and np.max(np.abs(np.diff(cols))) < 1.0
  b = pipeline.augment_image(image, np.random.default_rng(3), "character_elastic")
  np.testing.assert_array_equal(
    b, pipeline.augment_image(image, np.random.default_rng(3), "character_elastic")
  )


def test_character_shift_adds_translation_and_stays_deterministic():
  image = np.zeros((28, 28, 1), np.float32)
  image[12:16, 12:16] = 1.0
  centres = []
  for s in range(20):
    a = pipeline.augment_image(image, np.random.default_rng(s), "character_shift")
    b = pipeline.augment_image(image, np.random.default_rng(s), "character_shift")
    np.testing.assert_array_equal(a, b)
    ys, xs = np.nonzero(a[..., 0] > 0.5)
    centres.append(np.hypot(ys.mean() - 13.5, xs.mean() - 13.5))
  # Koch's own translation is at most 2/105 of the side (0.5 px here); 10% is 2.8 px.
  assert max(centres) > 1.0
