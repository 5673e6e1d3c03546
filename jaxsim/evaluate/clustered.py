"""Inference with subjects as the independent units: cluster bootstrap and permutation tests.

Pairs that share a subject are not independent: a pair list of 4,000 pairs over 60
subjects carries the information of about 60 units, not 4,000. A bootstrap over pairs
then gives intervals that are far too narrow (in a simulation with face_fp's split
structure and a true AUC of 0.5, a 95% pair-bootstrap interval covered the truth 39% of
the time, the subject bootstrap 94%). Everything here resamples or permutes subjects.

- `subject_bootstrap`: percentile intervals of any pair-level statistic by the cluster
  bootstrap (Davison & Hinkley 1997, Bootstrap Methods and their Application, sec. 3.8;
  Field & Welsh 2007, "Bootstrapping clustered data", JRSS B 69(3)). Each replicate draws
  the subjects with replacement (within each stratum, when given); a pair of two
  different subjects (s, t) then counts c_s c_t times and a pair within one subject c_s
  times, where c is how often each subject was drawn. The statistic sees these counts as
  integer pair weights, so weighted statistics need no resampled copies of the data.
  All draws come first, in seed order; with 20,000 pairs or more the replicates are then
  computed on threads, so the intervals do not depend on the thread count.
- Weighted statistics for that bootstrap: `verification_statistic` (AUC, EER, TAR at
  FAR, accuracy at a fixed threshold), `auc_difference_statistic` (two matchers on the
  same pairs, paired) and `overlap_statistic` (AUC, d', Bhattacharyya,
  overlap coefficient, KS), both sorting the scores once; `repeat_statistic` adapts any
  unweighted statistic of per-pair arrays (at the cost of copies).
- `identity_permutation_test`: an exact-level test of "genuine and impostor scores have
  the same law" that permutes the identities of one side of every pair, not the pairs.

Scores follow the package convention: higher = more likely the same identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from jaxsim import host_threads
from jaxsim.evaluate import verification

Statistic = Callable[[np.ndarray], float | Mapping[str, float]]

# `subject_bootstrap` computes replicates on up to this many threads (at most one per
# CPU it may use), for pair lists of at least _THREADED_PAIRS pairs; shorter lists spend
# their time in Python, where threads would only take turns.
_BOOTSTRAP_THREADS = 4
_THREADED_PAIRS = 20_000


def _bootstrap_threads(num_pairs: int) -> int:
  return 1 if num_pairs < _THREADED_PAIRS else host_threads.usable(_BOOTSTRAP_THREADS)


# ---------------------------------------------------------------------------
# Cluster bootstrap


class _Subjects:
  """The subjects of a pair list, indexed 0..S-1, with their strata."""

  def __init__(self, subjects_a, subjects_b=None, strata=None):
    sa = np.asarray(subjects_a).reshape(-1)
    sb = sa if subjects_b is None else np.asarray(subjects_b).reshape(-1)
    if sa.shape != sb.shape:
      raise ValueError(f"subjects_a and subjects_b must have equal length: {sa.size} vs {sb.size}")
    if sa.size == 0:
      raise ValueError("need at least one pair")
    self.ids, inv = np.unique(np.concatenate([sa, sb]), return_inverse=True)
    self.ia, self.ib = inv[: sa.size], inv[sa.size :]
    self.one_sided = subjects_b is None
    # Strata: a pair's stratum applies to both its subjects; a subject in two strata is an error.
    self.stratum = np.zeros(self.ids.size, np.int64)
    if strata is not None:
      st = np.asarray(strata).reshape(-1)
      if st.shape != sa.shape:
        raise ValueError(f"strata must have one entry per pair ({sa.size}), got {st.size}")
      _, st = np.unique(st, return_inverse=True)
      self.stratum[self.ia] = st
      self.stratum[self.ib] = st
      if np.any(self.stratum[self.ia] != st) or np.any(self.stratum[self.ib] != st):
        raise ValueError("a subject appears in pairs of two strata; strata must not share subjects")
    self.groups = [np.flatnonzero(self.stratum == k) for k in np.unique(self.stratum)]
    # `pair_weights` as one product: a pair within one subject multiplies by the 1 that
    # `pair_weights` appends to the counts (index S) instead of by its count again.
    self.ib_or_one = np.where(self.ia == self.ib, self.ids.size, self.ib)

  def draw(self, rng: np.random.Generator) -> np.ndarray:
    """How often each subject is drawn in one replicate (each stratum keeps its size)."""
    c = np.zeros(self.ids.size)
    for g in self.groups:
      c[g] = np.bincount(rng.integers(0, g.size, g.size), minlength=g.size)
    return c

  def pair_weights(self, counts: np.ndarray) -> np.ndarray:
    if self.one_sided:
      return counts[self.ia]
    return counts[self.ia] * np.append(counts, 1.0)[self.ib_or_one]


def _as_dict(value) -> dict[str, float]:
  if isinstance(value, Mapping):
    return {str(k): float(v) for k, v in value.items()}
  return {"value": float(value)}


def subject_bootstrap(
  statistic: Statistic,
  subjects_a: np.typing.ArrayLike,
  subjects_b: np.typing.ArrayLike | None = None,
  *,
  strata: np.typing.ArrayLike | None = None,
  num_resamples: int = 1000,
  confidence: float = 0.95,
  seed: int = 0,
) -> dict[str, float]:
  """Percentile intervals of a pair-level statistic by a bootstrap over subjects.

  Args:
    statistic: function of ``[N]`` integer pair weights (all ones for the observed data)
      returning a float or a flat dict of floats; see `verification_statistic`,
      `overlap_statistic` and `repeat_statistic`. It must not change shared state: for
      long pair lists several threads call it at once.
    subjects_a: ``[N]`` the subject of the first side of each pair (a probe, a query or a
      one-sided record when ``subjects_b`` is None).
    subjects_b: ``[N]`` the subject of the second side, or None when each item belongs
      to one subject (then a drawn subject's items count c_s times).
    strata: optional ``[N]`` stratum of each pair; subjects are drawn within each stratum,
      which keeps each stratum's subject count fixed (e.g. train and test subjects for a
      train-minus-test gap). Strata must not share subjects.
    num_resamples: bootstrap replicates.
    confidence: central coverage of the interval.
    seed: seed of the subject draws.

  Returns:
    Flat dict: for each statistic name (``value`` for a float statistic) ``{name}``,
    ``{name}_ci_low`` and ``{name}_ci_high`` (NaN replicates, e.g. with no genuine pair
    drawn, are ignored), plus ``num_subjects`` and ``num_resamples``.
  """
  if num_resamples < 1:
    raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  subj = _Subjects(subjects_a, subjects_b, strata)
  estimate = _as_dict(statistic(np.ones(subj.ia.size)))
  rng = np.random.default_rng([seed, 0xB005])
  draws = [subj.draw(rng) for _ in range(num_resamples)]  # [S] counts each, in seed order

  def replicate(counts):
    value = _as_dict(statistic(subj.pair_weights(counts)))
    return [value[k] for k in estimate]

  # Replicates are independent and NumPy releases the GIL in their array operations,
  # so long pair lists take them on threads; each replicate's values do not depend on
  # which thread computes them.
  threads = _bootstrap_threads(subj.ia.size) if num_resamples > 1 else 1
  reps = np.array(host_threads.map_in_order(replicate, draws, threads), np.float64)
  alpha = (1 - confidence) / 2
  out: dict[str, float] = {}
  for j, (name, value) in enumerate(estimate.items()):
    col = reps[:, j]
    ok = np.isfinite(col)
    lo, hi = np.quantile(col[ok], [alpha, 1 - alpha]) if ok.any() else (math.nan, math.nan)
    out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = value, float(lo), float(hi)
  out["num_subjects"] = float(subj.ids.size)
  out["num_resamples"] = float(num_resamples)
  return out


def repeat_statistic(fn: Callable[..., float | Mapping[str, float]], *arrays) -> Statistic:
  """Any statistic of per-pair arrays as a weighted one: each row repeated by its weight."""
  arrays = [np.asarray(a) for a in arrays]

  def statistic(weights):
    w = np.asarray(weights).astype(np.int64)
    return fn(*[np.repeat(a, w, axis=0) for a in arrays])

  return statistic


# ---------------------------------------------------------------------------
# Weighted statistics that sort the scores once


class _SortedScores:
  """Scores sorted once (decreasing), for weighted ROC and ECDF statistics."""

  def __init__(self, scores, labels):
    self.scores, self.labels = verification._check_scores_labels(scores, labels)
    self.order = np.argsort(-self.scores, kind="mergesort")
    s = self.scores[self.order]
    self.genuine = self.labels[self.order].astype(np.float64)  # 1.0 for a genuine pair
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    self.thresholds = np.r_[np.inf, s[last]]
    # Where `counts`' running sums (0 first) are read; None: every score is distinct.
    self.at = None if last.size == s.size else np.r_[0, last + 1]

  def counts(self, weights) -> tuple[np.ndarray, np.ndarray]:
    """Weighted (false, true) accepts at each distinct threshold, from +inf down.

    Weights are integer-valued (replicate counts), so every partial sum below 2**53 is
    exact: false accepts are all accepts minus true accepts, with no second product.
    """
    w = np.asarray(weights, np.float64)[self.order]
    tp, fp = np.zeros(w.size + 1), np.zeros(w.size + 1)
    np.multiply(w, self.genuine, out=tp[1:])
    np.cumsum(tp[1:], out=tp[1:])
    np.cumsum(w, out=fp[1:])
    fp -= tp
    if self.at is not None:
      return fp[self.at], tp[self.at]
    return fp, tp


def verification_statistic(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  threshold: float | None = None,
  fars: Sequence[float] = (),
) -> Statistic:
  """AUC, EER, TAR at each FAR and (given a threshold) decision rates, of weighted pairs.

  The weighted ROC counts each pair as often as its weight; with unit weights every
  value equals `verification.roc_auc`, `equal_error_rate`, `tar_at_far` and
  `metrics_at_threshold`. TAR at a FAR is reported only where the impostor pairs
  resolve it (``num_impostor * far >= 1``), as in `verification.tar_at_far`.

  Returns:
    A statistic for `subject_bootstrap` giving ``auc``, ``eer``, ``tar_at_far_{f}``
    (``f"{far:.0e}"`` keys) and, with ``threshold``, ``accuracy``, ``far``, ``frr``.
  """
  ss = _SortedScores(scores, labels)
  resolvable = [f for f in fars if (ss.labels == 0).sum() * f >= 1]
  if threshold is not None:  # as floats once: the products below would cast them each time
    accept = (ss.scores >= threshold).astype(np.float64)
    reject = 1.0 - accept
    is_gen, is_imp = (ss.labels == 1).astype(np.float64), (ss.labels == 0).astype(np.float64)

  def statistic(weights):
    fp, tp = ss.counts(weights)
    if tp[-1] <= 0 or fp[-1] <= 0:
      return {k: math.nan for k in _verification_keys(threshold, resolvable)}
    fpr, tpr = fp / fp[-1], tp / tp[-1]
    out = {
      "auc": float(np.trapezoid(tpr, fpr)),
      "eer": verification.eer_from_roc(fpr, tpr, ss.thresholds)[0],
    }
    for f in resolvable:
      out[f"tar_at_far_{verification.far_key(f)}"] = float(tpr[np.flatnonzero(fpr <= f)[-1]])
    if threshold is not None:
      w = np.asarray(weights, np.float64)
      gen, imp = w * is_gen, w * is_imp
      out["accuracy"] = float((gen @ accept + imp @ reject) / w.sum())
      out["far"] = float(imp @ accept / imp.sum())
      out["frr"] = float(gen @ reject / gen.sum())
    return out

  return statistic


def auc_difference_statistic(
  scores_a: np.typing.ArrayLike, scores_b: np.typing.ArrayLike, labels: np.typing.ArrayLike
) -> Statistic:
  """AUC of matcher A minus AUC of matcher B on the same weighted pairs (paired).

  Both matchers score the same pair list, so one subject draw of `subject_bootstrap`
  weights both: the interval of ``auc_difference`` is a paired comparison with the
  subjects as units. Returns ``auc_a``, ``auc_b`` and ``auc_difference``.
  """
  sorted_a, sorted_b = _SortedScores(scores_a, labels), _SortedScores(scores_b, labels)

  def auc(ss, weights) -> float:
    fp, tp = ss.counts(weights)
    if tp[-1] <= 0 or fp[-1] <= 0:
      return math.nan
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))

  def statistic(weights):
    a, b = auc(sorted_a, weights), auc(sorted_b, weights)
    return {"auc_a": a, "auc_b": b, "auc_difference": a - b}

  return statistic


def _verification_keys(threshold, fars) -> list[str]:
  keys = ["auc", "eer"] + [f"tar_at_far_{verification.far_key(f)}" for f in fars]
  return keys + (["accuracy", "far", "frr"] if threshold is not None else [])


def overlap_statistic(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike, bins: int = 50
) -> Statistic:
  """The overlap statistics of `evaluate.overlap`, of weighted pairs.

  AUC (ties count one half), Daugman's d', the Bhattacharyya and overlap coefficients
  over a fixed equal-width histogram (edges from the observed range) and the two-sample
  KS statistic. With unit weights they equal `overlap.auc`, `decidability`,
  `bhattacharyya_coefficient`, `overlap_coefficient` and `ks_statistic`.

  d', KS, 1 - BC and 1 - OVL measure a distance from "no difference" and cannot go below
  it, so near the null their bootstrap replicates sit above the estimate and percentile
  intervals lean away from the null (they may even exclude the estimate). Use them as
  descriptions; the AUC interval and `identity_permutation_test` carry the inference.
  """
  ss = _SortedScores(scores, labels)
  edges = np.linspace(ss.scores.min(), ss.scores.max(), bins + 1)
  which_bin = np.clip(np.searchsorted(edges, ss.scores, side="right") - 1, 0, bins - 1)
  names = ("auc", "decidability", "bhattacharyya", "overlap_coefficient", "ks_statistic")

  def statistic(weights):
    w = np.asarray(weights, np.float64)
    wg, wi = w * (ss.labels == 1), w * (ss.labels == 0)
    ng, ni = wg.sum(), wi.sum()
    if ng < 2 or ni < 2:
      return dict.fromkeys(names, math.nan)
    fp, tp = ss.counts(w)
    fpr, tpr = fp / ni, tp / ng
    mg, mi = wg @ ss.scores / ng, wi @ ss.scores / ni
    # Unbiased weighted variances with frequency weights (weights are replicate counts).
    vg = wg @ (ss.scores - mg) ** 2 / (ng - 1)
    vi = wi @ (ss.scores - mi) ** 2 / (ni - 1)
    pg = np.bincount(which_bin, wg, bins) / ng
    pi = np.bincount(which_bin, wi, bins) / ni
    spread = np.sqrt((vg + vi) / 2)
    return {
      "auc": float(np.trapezoid(tpr, fpr)),
      "decidability": float(abs(mg - mi) / spread) if spread > 0 else math.nan,
      "bhattacharyya": float(np.sum(np.sqrt(pg * pi))),
      "overlap_coefficient": float(np.sum(np.minimum(pg, pi))),
      # ECDFs of both groups at every distinct value: the same sup as over all points.
      "ks_statistic": float(np.max(np.abs(tpr - fpr))),
    }

  return statistic


# ---------------------------------------------------------------------------
# Permutation test over identities


def identity_permutation_test(
  scores: np.typing.ArrayLike,
  subjects_a: np.typing.ArrayLike,
  subjects_b: np.typing.ArrayLike,
  num_permutations: int = 10000,
  seed: int = 0,
) -> dict[str, float]:
  """Permutation test of "no information": the AUC of genuine vs impostor pairs under relabelling.

  A pair is genuine when ``subjects_a == subjects_b``. Under the null hypothesis that the
  side-b records carry no information about which side-a subject they belong to (e.g.
  a person's fingerprint is independent of their face), the assignment of side-b subjects
  to side-a subjects is exchangeable. The test draws random permutations sigma of the
  side-b subject labels, relabels pair (s, t) as genuine when s == sigma(t), and
  compares the observed AUC with the AUCs of the relabelled pair lists. Records of one
  subject stay together, so the dependence between pairs that share a subject is kept:
  the level is exact, unlike tests that permute or resample pairs.

  Pass many pairs per subject pair (ideally every side-a record against every side-b
  record of the evaluated subjects): relabelled lists keep only the pairs whose subjects
  the permutation matches. The AUC is computed from rank sums per (subject, subject)
  block, so each permutation costs O(#subjects).

  Reference: Good 2005, Permutation, Parametric and Bootstrap Tests of Hypotheses, ch. 3;
  the Mantel test (Mantel 1967, Cancer Research 27(2)) permutes units the same way.

  Returns:
    ``auc`` (observed), ``p_value`` (one-sided, genuine scores higher; (1 + #{null >= obs})
    / (1 + P)), ``null_mean``, ``null_q95`` (the null's 95th percentile),
    ``num_permutations`` (those with both classes present) and ``num_subjects``.
  """
  s = np.asarray(scores, np.float64).reshape(-1)
  sa, sb = np.asarray(subjects_a).reshape(-1), np.asarray(subjects_b).reshape(-1)
  if not (s.shape == sa.shape == sb.shape):
    raise ValueError(f"scores and subjects must have equal length: {s.size}, {sa.size}, {sb.size}")
  if not np.all(np.isfinite(s)):
    raise ValueError("scores contain NaN or inf")
  ids, inv = np.unique(np.concatenate([sa, sb]), return_inverse=True)
  n_ids, ia, ib = ids.size, inv[: s.size], inv[s.size :]
  ranks = stats.rankdata(s)  # average ranks: ties count one half in the AUC
  block = ia * n_ids + ib
  rank_sum = np.bincount(block, ranks, n_ids * n_ids).reshape(n_ids, n_ids)
  count = np.bincount(block, None, n_ids * n_ids).reshape(n_ids, n_ids)

  def auc_of(genuine_rank_sum, num_genuine):
    num_impostor = s.size - num_genuine
    with np.errstate(divide="ignore", invalid="ignore"):
      u = genuine_rank_sum - num_genuine * (num_genuine + 1) / 2
      return np.where(
        (num_genuine > 0) & (num_impostor > 0), u / (num_genuine * num_impostor), np.nan
      )

  cols = np.arange(n_ids)
  observed = float(auc_of(np.trace(rank_sum), np.trace(count)))
  if not np.isfinite(observed):
    raise ValueError("need at least one genuine (same-subject) and one impostor pair")
  rng = np.random.default_rng([seed, 0x9E7])
  null = np.empty(num_permutations)
  chunk = 1024
  for start in range(0, num_permutations, chunk):
    m = min(chunk, num_permutations - start)
    perms = np.argsort(rng.random((m, n_ids)), axis=1)  # sigma: side-b subject t -> perms[t]
    null[start : start + m] = auc_of(rank_sum[perms, cols].sum(1), count[perms, cols].sum(1))
  null = null[np.isfinite(null)]
  return {
    "auc": observed,
    "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size)),
    "null_mean": float(null.mean()) if null.size else math.nan,
    "null_q95": float(np.quantile(null, 0.95)) if null.size else math.nan,
    "num_permutations": float(null.size),
    "num_subjects": float(n_ids),
  }


def all_cross_pairs(subjects_a: np.typing.ArrayLike, subjects_b: np.typing.ArrayLike) -> dict:
  """Every (side-a record, side-b record) pair: ``{"a", "b", "label"}`` index arrays.

  The pair list that `identity_permutation_test` wants: every relabelling keeps all the
  records of each matched subject pair.
  """
  sa, sb = np.asarray(subjects_a).reshape(-1), np.asarray(subjects_b).reshape(-1)
  a, b = np.meshgrid(np.arange(sa.size), np.arange(sb.size), indexing="ij")
  a, b = a.reshape(-1), b.reshape(-1)
  return {"a": a, "b": b, "label": (sa[a] == sb[b]).astype(np.int32)}


def independent_pairs(
  subjects_a: np.typing.ArrayLike, subjects_b: np.typing.ArrayLike, seed: int = 0
) -> dict[str, np.ndarray]:
  """Genuine and impostor pairs whose scores are independent under the sqrt(2) null.

  One side-a record and one side-b record per subject (chosen at random); genuine pairs
  join the two records of each subject, impostor pairs join subject k's side-a record to
  subject k+1's side-b record along a random order of the subjects. The pairs form a
  path through the records (no record pair is repeated, no cycle), and distances between
  independent uniform unit vectors that share at most one endpoint are independent, so
  under the null every distance is an independent draw of the null law: a one-sample
  test on them holds its level, however the records cluster by subject. With S subjects
  present on both sides: S genuine and S - 1 impostor pairs.

  Returns:
    ``{"a", "b", "label"}``: record indices into the two sides and 1/0 labels.
  """
  sa, sb = np.asarray(subjects_a).reshape(-1), np.asarray(subjects_b).reshape(-1)
  common = np.intersect1d(sa, sb)
  if common.size < 2:
    raise ValueError(f"need at least 2 subjects on both sides, got {common.size}")
  rng = np.random.default_rng([seed, 0x150])
  order = rng.permutation(common)
  ra, rb = _one_record_each(sa, order, rng), _one_record_each(sb, order, rng)
  return {
    "a": np.r_[ra, ra[:-1]],
    "b": np.r_[rb, rb[1:]],
    "label": np.r_[np.ones(order.size, np.int32), np.zeros(order.size - 1, np.int32)],
  }


def _one_record_each(subjects: np.ndarray, order: np.ndarray, rng) -> np.ndarray:
  """A uniformly chosen record of each subject in `order` (the first after a shuffle)."""
  perm = rng.permutation(subjects.size)
  ids, first = np.unique(subjects[perm], return_index=True)
  return perm[first][np.searchsorted(ids, order)]


def verification_intervals(
  scores: np.ndarray,
  labels: np.ndarray,
  subjects_a: np.ndarray,
  subjects_b: np.ndarray,
  threshold: float,
  fars: tuple[float, ...],
  num_resamples: int,
  seed: int,
) -> dict[str, float]:
  """95% intervals of the test figures by a bootstrap over test identities, not pairs.

  The pairs of a fixed list share identities (166,800 pairs over 48 people), so they are
  not independent; `subject_bootstrap` draws identities and weights each pair
  by how often its two identities were drawn. The threshold stays the validation one.

  Returns:
    ``{m}_ci_low`` and ``{m}_ci_high`` for ``auc``, ``eer``, ``tar_at_far_{f}``,
    ``accuracy``, ``far`` and ``frr``, plus ``ci_num_identities`` and ``ci_num_resamples``.
  """
  boot = subject_bootstrap(
    verification_statistic(scores, labels, threshold, fars),
    subjects_a,
    subjects_b,
    num_resamples=num_resamples,
    seed=seed,
  )
  out = {k: v for k, v in boot.items() if k.endswith(("_ci_low", "_ci_high"))}
  out["ci_num_identities"] = boot["num_subjects"]
  out["ci_num_resamples"] = boot["num_resamples"]
  return out


def proportion_interval(
  outcomes, units=None, num_resamples: int = 1000, seed: int = 0, name: str = "accuracy"
) -> dict[str, float]:
  """95% interval of a proportion (e.g. an accuracy) by a bootstrap over `units`.

  `units` default: each outcome is its own unit (independent test images).
  Returns ``{name}_ci_low`` and ``{name}_ci_high``.
  """
  c = np.asarray(outcomes, np.float64).reshape(-1)
  boot = subject_bootstrap(
    lambda w: float(w @ c / w.sum()),
    np.arange(c.size) if units is None else units,
    num_resamples=num_resamples,
    seed=seed,
  )
  return {f"{name}_ci_low": boot["value_ci_low"], f"{name}_ci_high": boot["value_ci_high"]}
