"""N-way k-shot evaluation: random episodes and the one-shot "runs" of Lake et al. (2015).

Two protocols, both on features computed once per image:

- **Episodes** (`sample_episodes`, `episode_accuracy`): N classes drawn from one
  alphabet (or from all), k support images and q queries per class; the support and
  query images of an episode come from two disjoint sets of drawers, so a query is
  never matched on its drawer's hand. Accuracy is the mean over episodes, with the
  usual normal 95% interval over episodes (conditional on the evaluation classes:
  it says how well the mean is measured, not how it would vary over new alphabets;
  `per_group` gives the spread over alphabets).
- **Runs** (`build_runs`, `read_runs`, `score_runs`): the 20-way one-shot format of
  Lake, Salakhutdinov and Tenenbaum (2015). A run folder holds
  `runNN/training/classJJ.png` (one image per class), `runNN/test/itemKK.png` and
  `runNN/class_labels.txt`, whose lines are `runNN/test/itemKK.png
  runNN/training/classJJ.png` (a test item and the training image of its class).
  `run_files` makes runs in exactly that layout from held-out alphabets;
  `read_runs` reads any folder of them (the standard 20 runs included) and checks
  it; `score_runs` scores them and gives a bootstrap interval over runs.

A scorer maps query features [Q, D] and support features [N, k, D] to class scores
[Q, N] (higher = more alike): `prototype_scorer` for embedding models (distance to
the class mean, optionally after a power transform and centring), `pair_scorer` for
pair models such as Koch's L1 head (the mean score over the k supports).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.linalg

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
LABELS_FILE = "class_labels.txt"


# ---------------------------------------------------------------------------
# Scorers


def _check_power(power: float) -> None:
  if not power > 0:  # NaN fails too
    raise ValueError(f"power must be > 0, got {power!r}")


def power_features(features: np.ndarray, power: float = 1.0) -> np.ndarray:
  """Tukey's ladder of powers, sign(x) |x|^power, per feature (1.0: unchanged).

  A power below 1 shrinks the few large activations of ReLU features towards the rest,
  which makes their distribution less skewed before a mean or a cosine (Hu et al. 2021).
  """
  _check_power(power)
  x = np.asarray(features, np.float64)
  return x if power == 1.0 else np.sign(x) * np.abs(x) ** power


def within_class_whitening(
  features: np.ndarray, labels: np.ndarray, shrinkage: float = 0.5
) -> np.ndarray:
  """A [D, D] map that whitens the within-class scatter of labelled training features.

  W = L^(-T), where L L^T = S is the Cholesky factor of S = (1 - a) Sw + a tr(Sw) / D I,
  so that W W^T = S^(-1) and x W has identity covariance when x has covariance S
  (distances and cosines after W depend only on W W^T, so this scores as S^(-1/2)
  does, at a fraction of an eigendecomposition's cost). Sw is the pooled within-class
  covariance of `features` [N, D] (classes `labels` [N]), shrunk by `shrinkage` a
  towards a multiple of the identity (Ledoit and Wolf's target; it keeps W defined
  when N - C < D). After it, directions in which drawings of one character vary count
  less than those in which characters differ: the within-class covariance
  normalisation of speaker verification (Hatch et al. 2006). Fit it on the training
  classes only; `fit_prototype_scoring` applies it.
  """
  x, labels = np.asarray(features, np.float64), np.asarray(labels)
  if not 0.0 < shrinkage <= 1.0:
    raise ValueError(f"whitening shrinkage must be in (0, 1], got {shrinkage!r}")
  _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
  if len(x) - len(counts) < 1:
    raise ValueError(
      f"within-class whitening needs classes with at least two samples: {len(x)} "
      f"features in {len(counts)} classes"
    )
  means = np.zeros((len(counts), x.shape[1]))
  np.add.at(means, inv, x)
  residual = x - means[inv] / counts[inv, None]
  scatter = residual.T @ residual / (len(x) - len(counts))
  d = scatter.shape[0]
  target = np.trace(scatter) / d
  shrunk = (1 - shrinkage) * scatter + shrinkage * max(target, 1e-300) * np.eye(d)
  lower = scipy.linalg.cholesky(shrunk, lower=True)
  return scipy.linalg.solve_triangular(lower, np.eye(d), lower=True).T


def prototype_scorer(
  metric: str = "euclidean",
  center: np.ndarray | str | None = None,
  power: float = 1.0,
) -> Scorer:
  """Class score = -distance to the mean of the class's supports (Snell et al. 2017).

  `metric`: "euclidean" (squared) or "cosine". Every feature is first passed through
  `power_features(., power)`, then `center` is subtracted:
  - an array (after the same power, e.g. the mean training feature; with "cosine" this
    is SimpleShot's centred L2 normalisation, Wang et al. 2019);
  - "supports": the mean of the episode's (or run's) support features, which removes
    what the N classes share, such as one alphabet's style. It uses the labelled
    supports only, never the other queries.
  """
  if metric not in ("euclidean", "cosine"):
    raise ValueError(f"prototype metric must be 'euclidean' or 'cosine', got {metric!r}")
  if isinstance(center, str) and center != "supports":
    raise ValueError(f"center must be an array, 'supports' or None, got {center!r}")
  _check_power(power)  # now, not at the first episode

  def score(queries: np.ndarray, supports: np.ndarray) -> np.ndarray:
    q, s = power_features(queries, power), power_features(supports, power)
    if isinstance(center, str):
      c = s.reshape(-1, s.shape[-1]).mean(0)
      q, s = q - c, s - c
    elif center is not None:
      q, s = q - center, s - center
    if metric == "cosine":
      q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
      s = s / np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
    protos = s.mean(axis=1)
    if metric == "cosine":
      protos = protos / np.maximum(np.linalg.norm(protos, axis=-1, keepdims=True), 1e-12)
      return q @ protos.T
    return -((q**2).sum(-1)[:, None] - 2 * q @ protos.T + (protos**2).sum(-1)[None])

  return score


FeatureMap = Callable[[np.ndarray], np.ndarray]


def fit_prototype_scoring(
  metric: str,
  center: str,
  power: float = 1.0,
  whiten: float = 0.0,
  train_features: np.ndarray | None = None,
  train_labels: np.ndarray | None = None,
) -> tuple[FeatureMap, Scorer]:
  """A per-feature map and a `prototype_scorer`, fitted on training features.

  The map is `power_features(., power)` followed, with `whiten` > 0, by
  `within_class_whitening` of the mapped training features with that shrinkage. Apply
  it once to all features, then score episodes or runs with the scorer: nearest
  prototype by `metric`, centred on `center` ("none", "supports", or "train": the mean
  mapped training feature). The map is linear after the power, so centring on the
  supports commutes with it: this equals whitening inside every trial, without a
  [D, D] product per trial. `train_features` [N, D] (and `train_labels` [N], for the
  whitening) are features of training classes only, from the same model (the
  Omniglot task fits them on unshifted images and maps shift-averaged features:
  `omniglot.scorer_for`).
  """
  if center not in ("none", "supports", "train"):
    raise ValueError(f"center must be 'none', 'supports' or 'train', got {center!r}")
  fit = center == "train" or whiten
  if fit and train_features is None:
    raise ValueError("a training-mean centre or a whitening needs train_features")
  _check_power(power)
  transform = None
  if whiten:
    transform = within_class_whitening(power_features(train_features, power), train_labels, whiten)

  def feature_map(features: np.ndarray) -> np.ndarray:
    x = power_features(features, power)
    return (x if transform is None else x @ transform).astype(np.float32)

  mean = feature_map(train_features).mean(0) if center == "train" else None
  return feature_map, prototype_scorer(metric, {"supports": "supports"}.get(center, mean))


def pair_scorer(pair_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Scorer:
  """Class score = mean of `pair_fn(query, support)` over the class's supports.

  `pair_fn(a [P, D], b [P, D]) -> [P]` scores matched rows (e.g. Koch's pair head).
  """

  def score(queries: np.ndarray, supports: np.ndarray) -> np.ndarray:
    n_q, (n, k, d) = len(queries), supports.shape
    a = np.repeat(queries, n * k, axis=0)
    b = np.tile(supports.reshape(n * k, d), (n_q, 1))
    return np.asarray(pair_fn(a, b)).reshape(n_q, n, k).mean(-1)

  return score


# ---------------------------------------------------------------------------
# Episodes


@dataclasses.dataclass
class Episodes:
  """Record indices of `num` episodes: `support` [E, N, k], `query` [E, N, q];
  `group` [E] is the alphabet (group) each episode was drawn from (-1: across groups)."""

  support: np.ndarray
  query: np.ndarray
  group: np.ndarray


def sample_episodes(
  classes: np.ndarray,
  drawers: np.ndarray,
  *,
  way: int,
  shot: int,
  queries: int,
  num: int,
  groups: np.ndarray | None = None,
  seed: int = 0,
) -> Episodes:
  """Draws `num` N-way k-shot episodes over records with these classes and drawers.

  Each episode picks a group (when `groups` is given: all classes from one group, as
  Lake's within-alphabet runs), `way` classes, then `shot` support drawers and
  `queries` other query drawers shared by all its classes, so supports and queries are
  always by different drawers. Classes must have one record per drawer of a shared
  drawer set (Omniglot's layout); groups with fewer than `way` classes are skipped.

  Raises:
    ValueError: no group has `way` classes, or there are fewer than `shot + queries`
      drawers.
  """
  classes, drawers = np.asarray(classes), np.asarray(drawers)
  table: dict[tuple[int, int], int] = {}
  for i, (c, d) in enumerate(zip(classes.tolist(), drawers.tolist(), strict=True)):
    table.setdefault((c, d), i)
  all_drawers = np.unique(drawers)
  if len(all_drawers) < shot + queries:
    raise ValueError(
      f"{shot}-shot episodes with {queries} queries need {shot + queries} drawers, the "
      f"records have {len(all_drawers)}"
    )
  class_group = {}
  if groups is not None:
    for c, g in zip(classes.tolist(), np.asarray(groups).tolist(), strict=True):
      class_group[c] = g
  else:
    class_group = dict.fromkeys(classes.tolist(), -1)
  by_group: dict[int, np.ndarray] = {}
  for c, g in class_group.items():
    by_group.setdefault(g, []).append(c)
  eligible = sorted(g for g, cs in by_group.items() if len(cs) >= way)
  if not eligible:
    sizes = {g: len(cs) for g, cs in by_group.items()}
    raise ValueError(f"{way}-way episodes need a group with {way} classes; sizes are {sizes}")
  rng = np.random.default_rng(seed)
  support = np.empty((num, way, shot), np.int64)
  query = np.empty((num, way, queries), np.int64)
  group = np.empty(num, np.int64)
  for e in range(num):
    g = eligible[rng.integers(len(eligible))]
    cs = rng.choice(sorted(by_group[g]), way, replace=False)
    ds = rng.choice(all_drawers, shot + queries, replace=False)
    for j, c in enumerate(cs):
      rows = [table.get((int(c), int(d)), -1) for d in ds]
      if min(rows) < 0:
        raise ValueError(f"class {c} has no image by one of drawers {ds.tolist()}")
      support[e, j], query[e, j] = rows[:shot], rows[shot:]
    group[e] = g
  return Episodes(support, query, group)


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
  """(mean, low, high): the normal 95% interval of a mean over independent draws."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
  return mean, mean - half, mean + half


def episode_accuracy(features: np.ndarray, episodes: Episodes, scorer: Scorer) -> dict:
  """Accuracy over the episodes' queries, with a 95% interval over episodes.

  Returns:
    `{accuracy, accuracy_ci_low, accuracy_ci_high, num_episodes, per_group: {g: acc}}`.
  """
  features = np.asarray(features)
  per_episode = np.empty(len(episodes.group))
  for e in range(len(per_episode)):
    sup, qry = episodes.support[e], episodes.query[e]
    way, q = qry.shape
    scores = scorer(features[qry.reshape(-1)], features[sup])
    truth = np.repeat(np.arange(way), q)
    per_episode[e] = np.mean(np.argmax(scores, axis=1) == truth)
  acc, lo, hi = mean_interval(per_episode)
  per_group = {
    int(g): float(per_episode[episodes.group == g].mean()) for g in np.unique(episodes.group)
  }
  return {
    "accuracy": acc,
    "accuracy_ci_low": lo,
    "accuracy_ci_high": hi,
    "num_episodes": float(len(per_episode)),
    "per_group": per_group,
  }


# ---------------------------------------------------------------------------
# Runs in Lake et al.'s layout


@dataclasses.dataclass
class Run:
  """One N-way one-shot run: `training` [N] and `test` [T] image paths (relative to the
  runs root), and `label` [T], the index into `training` of each test item's class."""

  name: str
  training: list[str]
  test: list[str]
  label: np.ndarray


def _natural_key(path: str) -> list:
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def read_run(root: str | pathlib.Path, name: str) -> Run:
  """Reads and checks `root/name/class_labels.txt` and the images it names.

  Raises:
    FileNotFoundError: the labels file, or an image it names, is missing (the
      message names the file and the line).
    ValueError: a malformed line, a test item listed twice, or counts that disagree
      with the `training/` and `test/` folders.
  """
  root = pathlib.Path(root)
  labels_path = root / name / LABELS_FILE
  if not labels_path.is_file():
    raise FileNotFoundError(
      f"run folder {root / name} has no {LABELS_FILE}; each run needs one, with lines "
      f"'{name}/test/itemKK.png {name}/training/classJJ.png'"
    )
  pairs = []
  for n, line in enumerate(labels_path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    fields = line.split()
    if len(fields) != 2:
      raise ValueError(
        f"{labels_path} line {n}: expected 'TEST_IMAGE TRAINING_IMAGE', got {line.strip()!r}"
      )
    for f in fields:
      if not (root / f).is_file():
        raise FileNotFoundError(
          f"{labels_path} line {n} names {f}, which does not exist under {root}"
        )
    pairs.append(tuple(fields))
  if not pairs:
    raise ValueError(f"{labels_path} lists no test items")
  test = [t for t, _ in pairs]
  if len(set(test)) != len(test):
    raise ValueError(f"{labels_path} lists a test item more than once")
  on_disk = {
    sub: sorted(
      (p.relative_to(root).as_posix() for p in (root / name / sub).glob("*.png")),
      key=_natural_key,
    )
    for sub in ("training", "test")
  }
  named = {"training": {c for _, c in pairs}, "test": set(test)}
  for sub in ("training", "test"):
    if len(on_disk[sub]) != len(named[sub]) or set(on_disk[sub]) != named[sub]:
      raise ValueError(
        f"{labels_path} names {len(named[sub])} {sub} image(s) but {root / name / sub} holds "
        f"{len(on_disk[sub])}; the labels file and the folder must list the same images"
      )
  training = on_disk["training"]
  index = {c: i for i, c in enumerate(training)}
  return Run(name, training, test, np.array([index[c] for _, c in pairs], np.int64))


def read_runs(root: str | pathlib.Path) -> list[Run]:
  """Every `run*` folder under `root`, in natural order (run01, run02, ...)."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise FileNotFoundError(
      f"one-shot runs folder {root} does not exist; pass a folder holding runNN/ folders "
      "(each with training/, test/ and class_labels.txt) with --config.eval.runs_root=PATH"
    )
  names = sorted(
    (p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("run")), key=_natural_key
  )
  if not names:
    raise FileNotFoundError(f"{root} holds no runNN/ folders of one-shot runs")
  return [read_run(root, n) for n in names]


def run_files(
  png_bytes: Callable[[int], bytes],
  classes: np.ndarray,
  drawers: np.ndarray,
  groups: np.ndarray,
  *,
  num_runs: int = 20,
  way: int = 20,
  seed: int = 0,
) -> dict[str, bytes | str]:
  """The files of `num_runs` within-group `way`-way one-shot runs in Lake et al.'s layout.

  Run r takes one group (one with `way` classes, drawn at random), `way` of its
  classes, and two distinct drawers: the training images are by the first, the test
  items by the second, so every test item has exactly one training image of its class.
  Test items are shuffled. Images are the original files, byte for byte
  (`png_bytes(record)`; records index `classes`, `drawers` and `groups`).

  Returns:
    `{relative path: PNG bytes or the text of class_labels.txt}`; write them with
    `jaxsim.report.write_files` and read them back with `read_runs`.
  """
  episodes = sample_episodes(
    classes, drawers, way=way, shot=1, queries=1, num=num_runs, groups=groups, seed=seed
  )
  rng = np.random.default_rng([seed, 1])
  files: dict[str, bytes | str] = {}
  for r in range(num_runs):
    name = f"run{r + 1:02d}"
    order = rng.permutation(way)  # test item k shows class order[k]
    lines = []
    for j in range(way):
      files[f"{name}/training/class{j + 1:02d}.png"] = png_bytes(int(episodes.support[r, j, 0]))
    for k, j in enumerate(order):
      files[f"{name}/test/item{k + 1:02d}.png"] = png_bytes(int(episodes.query[r, j, 0]))
      lines.append(f"{name}/test/item{k + 1:02d}.png {name}/training/class{j + 1:02d}.png")
    files[f"{name}/{LABELS_FILE}"] = "\n".join(lines) + "\n"
  return files


def score_runs(
  runs: Sequence[Run],
  features_of: Callable[[list[str]], np.ndarray],
  scorer: Scorer,
  *,
  num_resamples: int = 10_000,
  seed: int = 0,
) -> dict:
  """Scores each run (every test item against the run's training images).

  `features_of(paths)` returns the features [len(paths), D] of images given as paths
  relative to the runs root. The interval is a percentile bootstrap over runs (the
  runs, not the items, are the independent draws of classes and drawers).

  Returns:
    `{accuracy, accuracy_ci_low, accuracy_ci_high, num_runs, per_run: [...],
    predictions: [[...], ...], scores: [[[...]]]}` (scores [T, N] per run).
  """
  per_run, predictions, all_scores = [], [], []
  for run in runs:
    feats = features_of(run.training + run.test)
    train_f, test_f = feats[: len(run.training)], feats[len(run.training) :]
    scores = np.asarray(scorer(test_f, train_f[:, None, :]))
    pred = np.argmax(scores, axis=1)
    per_run.append(float(np.mean(pred == run.label)))
    predictions.append(pred.tolist())
    all_scores.append(scores)
  per_run_arr = np.array(per_run)
  rng = np.random.default_rng(seed)
  boot = per_run_arr[rng.integers(0, len(per_run_arr), (num_resamples, len(per_run_arr)))]
  boot_means = boot.mean(axis=1)
  return {
    "accuracy": float(per_run_arr.mean()),
    "accuracy_ci_low": float(np.quantile(boot_means, 0.025)),
    "accuracy_ci_high": float(np.quantile(boot_means, 0.975)),
    "num_runs": float(len(runs)),
    "per_run": per_run,
    "predictions": predictions,
    "scores": all_scores,
  }


# ---------------------------------------------------------------------------
# The classical baseline


def pixel_baseline(
  val_images: np.ndarray,
  val_episodes: Episodes,
  test_images: np.ndarray,
  episodes: Mapping[tuple[int, int], Episodes],
  runs: Mapping[str, tuple[Any, Sequence[Run]]],
  read_images: Callable[[Any, list[str]], np.ndarray],
  seed: int = 0,
) -> dict:
  """Nearest class prototype on raw pixels: the baseline that needs no learning.

  The metric ("euclidean" or "cosine") and the centring (none, or the mean of the
  episode's supports) are chosen on the validation episodes; then the test episodes
  (`{(way, shot): Episodes}` over `test_images`) and every run set in `runs`
  (`{key: (root, runs)}`, images read by `read_images(root, paths)`) are scored once.

  Returns:
    `{metric, center, val_accuracy: {option: accuracy}, episodes: {"{way}way_{shot}shot":
    ...}, <key>: score_runs's figures without the scores, and the root}`.
  """

  def flat(images):
    return np.asarray(images, np.float32).reshape(len(images), -1)

  options = {
    f"{m}_{c or 'none'}": (m, c) for m in ("euclidean", "cosine") for c in (None, "supports")
  }
  val = flat(val_images)
  val_acc = {
    name: episode_accuracy(val, val_episodes, prototype_scorer(*option))["accuracy"]
    for name, option in options.items()
  }
  metric, center = options[max(val_acc, key=val_acc.get)]  # the first of equals
  scorer, test = prototype_scorer(metric, center), flat(test_images)
  out: dict = {"metric": metric, "center": center or "none", "val_accuracy": val_acc}
  out["episodes"] = {
    f"{way}way_{shot}shot": {
      k: v for k, v in episode_accuracy(test, eps, scorer).items() if k != "per_group"
    }
    for (way, shot), eps in episodes.items()
  }
  for key, (root, run_list) in runs.items():
    r = score_runs(
      run_list, lambda paths, root=root: flat(read_images(root, paths)), scorer, seed=seed
    )
    out[key] = {**{k: v for k, v in r.items() if k != "scores"}, "root": str(root)}
  return out
