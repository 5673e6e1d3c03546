"""Overlap of genuine and impostor score distributions, and the exact sqrt(2) null.

Overlap statistics take two independent samples, ``genuine`` (same-identity pairs) and
``impostor`` (different-identity pairs), of scores where higher = more similar (negate
distances). d', Bhattacharyya, overlap coefficient and KS do not depend on the sign; AUC
does.

The null: for x, y independent and uniform on the unit sphere S^{d-1}, the cosine
t = <x, y> has density proportional to (1 - t^2)^((d - 3) / 2), so (1 + t) / 2 ~ Beta(a, a)
with a = (d - 1) / 2. The Euclidean distance D = |x - y| = sqrt(2 - 2t) = 2 sqrt(B) with
B = (1 - t) / 2 ~ Beta(a, a) (the law is symmetric). Hence E[D^2] = 2 exactly,
E[D] = 2 B(a + 1/2, a) / B(a, a), Var[D] = 2 - E[D]^2 ~ 1 / (2d). For d = 256 the null has
mean 1.4135 and standard deviation 0.0441: distances of L2-normalised embeddings "peaking
at sqrt(2)" with a much wider spread are not random vectors.
Reference: Muller 1959, "A note on a method for generating points uniformly on
n-dimensional spheres", CACM 2(4); the cosine law is e.g. Cai, Fan & Jiang 2013,
"Distributions of angles in random packing on spheres", JMLR 14, eq. (5).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special, stats

from jaxsim.evaluate.verification import bootstrap_ci


def _beta_param(dim: int) -> float:
  if int(dim) != dim or dim < 2:
    raise ValueError(f"dim must be an integer >= 2, got {dim}")
  return (dim - 1) / 2


def null_distance_pdf(x: np.typing.ArrayLike, dim: int) -> np.ndarray:
  """Density of |x - y| for independent uniform unit vectors in R^dim, on [0, 2].

  With B = D^2 / 4 ~ Beta(a, a): f_D(x) = f_B(x^2 / 4) * x / 2.
  """
  a = _beta_param(dim)
  x = np.asarray(x, np.float64)
  inside = (x > 0) & (x < 2)
  b = np.where(inside, x**2 / 4, 0.5)
  return np.where(inside, stats.beta.pdf(b, a, a) * x / 2, 0.0)


def null_distance_cdf(x: np.typing.ArrayLike, dim: int) -> np.ndarray:
  """CDF of |x - y| for independent uniform unit vectors in R^dim: I_{x^2/4}(a, a)."""
  a = _beta_param(dim)
  return special.betainc(a, a, np.clip(np.asarray(x, np.float64) ** 2 / 4, 0.0, 1.0))


def null_distance_mean(dim: int) -> float:
  """E|x - y| = 2 B(a + 1/2, a) / B(a, a), a = (dim - 1) / 2 (log-space for large dim)."""
  a = _beta_param(dim)
  return float(2 * np.exp(special.betaln(a + 0.5, a) - special.betaln(a, a)))


def null_distance_variance(dim: int) -> float:
  """Var|x - y| = E[D^2] - E[D]^2 = 2 - E[D]^2 (E[D^2] = 4 E[B] = 2)."""
  return float(2.0 - null_distance_mean(dim) ** 2)


def null_distance_moments(dim: int) -> tuple[float, float]:
  """(mean, standard deviation) of the null distance in R^dim."""
  return null_distance_mean(dim), float(np.sqrt(null_distance_variance(dim)))


def null_distance_test(distances: np.typing.ArrayLike, dim: int) -> dict[str, float]:
  """Test of isotropy: observed distances against the exact law for random unit vectors.

  What it tests: whether the distances between L2-normalised embeddings follow the law of
  distances between *independent, uniformly distributed* unit vectors in R^dim. A
  rejection says the embedding is not isotropic (its vectors are not spread uniformly
  over the sphere, or the two sides are dependent). Every trained embedding is
  anisotropic, so a rejection is not evidence that the two sides of a pair share
  information: two independent towers that each use a 10-d subspace of R^16 reject
  strongly. A non-rejection does not show that there is no structure either. Whether
  genuine pairs score differently from impostor pairs is tested by
  `clustered.identity_permutation_test`.

  The one-sample KS p-value assumes independent distances: pass one distance per
  distinct record pair with no record shared in a cycle (`clustered.independent_pairs`).
  Distances drawn with replacement from a pair list that shares subjects make the test
  reject far above its level (52% at level 0.01 on exact-null data in one simulation).

  Args:
    distances: [N] Euclidean distances in [0, 2], independent under the null.
    dim: embedding dimension d.

  Returns:
    Flat dict: ``n``, ``dim``, ``observed_mean``, ``observed_std`` (ddof=1), ``null_mean``,
    ``null_std``, ``mean_z`` ((observed mean - null mean) / (null std / sqrt(n))),
    ``std_ratio`` (observed std / null std), ``ks_statistic``, ``ks_pvalue``.
  """
  d = np.asarray(distances, np.float64).reshape(-1)
  if d.size < 2:
    raise ValueError("need at least 2 distances")
  if d.min() < -1e-6 or d.max() > 2 + 1e-6:
    raise ValueError(
      f"distances must lie in [0, 2] (L2-normalised embeddings); got range "
      f"[{d.min():.4g}, {d.max():.4g}]"
    )
  mean, std = null_distance_moments(dim)
  ks = stats.kstest(d, lambda x: null_distance_cdf(x, dim))
  return {
    "n": float(d.size),
    "dim": float(dim),
    "observed_mean": float(d.mean()),
    "observed_std": float(d.std(ddof=1)),
    "null_mean": mean,
    "null_std": std,
    "mean_z": float((d.mean() - mean) / (std / np.sqrt(d.size))),
    "std_ratio": float(d.std(ddof=1) / std),
    "ks_statistic": float(ks.statistic),
    "ks_pvalue": float(ks.pvalue),
  }


def _two(genuine, impostor) -> tuple[np.ndarray, np.ndarray]:
  g = np.asarray(genuine, np.float64).reshape(-1)
  i = np.asarray(impostor, np.float64).reshape(-1)
  if g.size < 2 or i.size < 2:
    raise ValueError(f"need at least 2 genuine and 2 impostor scores, got {g.size} and {i.size}")
  return g, i


def auc(genuine: np.typing.ArrayLike, impostor: np.typing.ArrayLike) -> float:
  """P(genuine > impostor) + 0.5 P(tie) via the Mann-Whitney U statistic (= ROC AUC)."""
  g, i = _two(genuine, impostor)
  ranks = stats.rankdata(np.concatenate([g, i]))
  u = ranks[: g.size].sum() - g.size * (g.size + 1) / 2
  return float(u / (g.size * i.size))


def decidability(genuine: np.typing.ArrayLike, impostor: np.typing.ArrayLike) -> float:
  """Daugman's d' = |mu_g - mu_i| / sqrt((var_g + var_i) / 2).

  Reference: Daugman 2004, "How iris recognition works", IEEE TCSVT 14(1).
  """
  g, i = _two(genuine, impostor)
  return float(abs(g.mean() - i.mean()) / np.sqrt((g.var(ddof=1) + i.var(ddof=1)) / 2))


def _histograms(g: np.ndarray, i: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
  edges = np.linspace(min(g.min(), i.min()), max(g.max(), i.max()), bins + 1)
  pg, _ = np.histogram(g, edges)
  pi, _ = np.histogram(i, edges)
  return pg / g.size, pi / i.size


def bhattacharyya_coefficient(
  genuine: np.typing.ArrayLike, impostor: np.typing.ArrayLike, bins: int = 50
) -> float:
  """BC = sum_b sqrt(p_b q_b) over a shared equal-width histogram (1 = identical, 0 = disjoint).

  Reference: Bhattacharyya 1943, Bull. Calcutta Math. Soc. 35.
  """
  pg, pi = _histograms(*_two(genuine, impostor), bins)
  return float(np.sum(np.sqrt(pg * pi)))


def overlap_coefficient(
  genuine: np.typing.ArrayLike, impostor: np.typing.ArrayLike, bins: int = 50
) -> float:
  """OVL = sum_b min(p_b, q_b) over a shared equal-width histogram (the shared probability mass).

  Reference: Inman & Bradley 1989, Commun. Stat. Theory Methods 18(10).
  """
  pg, pi = _histograms(*_two(genuine, impostor), bins)
  return float(np.sum(np.minimum(pg, pi)))


def ks_statistic(genuine: np.typing.ArrayLike, impostor: np.typing.ArrayLike) -> float:
  """Two-sample Kolmogorov-Smirnov statistic sup |F_g - F_i|."""
  g, i = _two(genuine, impostor)
  g, i = np.sort(g), np.sort(i)
  # Both ECDFs evaluated at every observed value (right-continuous), as scipy's ks_2samp.
  x = np.concatenate([g, i])
  cdf_g = np.searchsorted(g, x, side="right") / g.size
  cdf_i = np.searchsorted(i, x, side="right") / i.size
  return float(np.max(np.abs(cdf_g - cdf_i)))


OVERLAP_STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
  "auc": auc,
  "decidability": decidability,
  "bhattacharyya": bhattacharyya_coefficient,
  "overlap_coefficient": overlap_coefficient,
  "ks_statistic": ks_statistic,
}


def overlap_metrics(
  genuine: np.typing.ArrayLike,
  impostor: np.typing.ArrayLike,
  num_resamples: int = 1000,
  confidence: float = 0.95,
  seed: int = 0,
) -> dict[str, float]:
  """All overlap statistics with stratified percentile-bootstrap intervals.

  Returns:
    Flat dict: for each name in ``auc``, ``decidability``, ``bhattacharyya``,
    ``overlap_coefficient``, ``ks_statistic``: ``{name}``, ``{name}_ci_low``,
    ``{name}_ci_high``; plus ``num_genuine`` and ``num_impostor``.
  """
  g, i = _two(genuine, impostor)
  out = {}
  for k, (name, fn) in enumerate(OVERLAP_STATISTICS.items()):
    out[name] = fn(g, i)
    lo, hi = bootstrap_ci(fn, (g, i), num_resamples, confidence, seed + k)
    out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lo, hi
  out["num_genuine"], out["num_impostor"] = float(g.size), float(i.size)
  return out


def auc_gap(
  train_genuine: np.typing.ArrayLike,
  train_impostor: np.typing.ArrayLike,
  test_genuine: np.typing.ArrayLike,
  test_impostor: np.typing.ArrayLike,
  num_resamples: int = 1000,
  confidence: float = 0.95,
  seed: int = 0,
) -> dict[str, float]:
  """Train-pair AUC minus test-pair AUC: a memorisation gauge, with a bootstrap interval.

  A large positive gap with a test AUC near 0.5 means the model separates pairs it was
  trained on but not new identities.

  Returns:
    ``train_auc``, ``test_auc``, ``auc_gap``, ``auc_gap_ci_low``, ``auc_gap_ci_high``.
  """
  samples = [
    np.asarray(a, np.float64).reshape(-1)
    for a in (train_genuine, train_impostor, test_genuine, test_impostor)
  ]

  def gap(a, b, c, d):
    return auc(a, b) - auc(c, d)

  lo, hi = bootstrap_ci(gap, samples, num_resamples, confidence, seed)
  train, test = auc(*samples[:2]), auc(*samples[2:])
  return {
    "train_auc": train,
    "test_auc": test,
    "auc_gap": train - test,
    "auc_gap_ci_low": lo,
    "auc_gap_ci_high": hi,
  }


def contrastive_diagnostics(distances, labels, margin: float) -> dict[str, float]:
  """Contrastive-loss bookkeeping that exposes an unreachable margin.

  `do_nothing_loss` is the loss of the best constant distance d* = (1 - p) margin
  (p = share of genuine pairs), p (1 - p) margin^2, reached without telling anyone apart;
  a loss near it means nothing was learned. On unit vectors d <= 2, so with margin >= 2
  every impostor pair stays active (`impostor_active_fraction` = 1).
  """
  d = np.asarray(distances, np.float64)
  y = np.asarray(labels)
  p = float(np.mean(y == 1))
  loss = np.where(y == 1, d**2, np.maximum(margin - d, 0.0) ** 2)
  return {
    "margin": float(margin),
    "loss": float(loss.mean()),
    "do_nothing_loss": p * (1 - p) * margin**2,
    "do_nothing_distance": (1 - p) * margin,
    "impostor_active_fraction": float(np.mean(d[y == 0] < margin)),
  }


def distance_summary(distances, labels) -> dict[str, float]:
  """Mean and spread of genuine and impostor distances, their range, and the share near 2."""
  d, y = np.asarray(distances, np.float64), np.asarray(labels)
  g, i = d[y == 1], d[y == 0]
  return {
    "genuine_mean": float(g.mean()),
    "genuine_std": float(g.std(ddof=1)),
    "impostor_mean": float(i.mean()),
    "impostor_std": float(i.std(ddof=1)),
    "min": float(d.min()),
    "max": float(d.max()),
    "impostor_fraction_above_1.9": float(np.mean(i > 1.9)),
  }
