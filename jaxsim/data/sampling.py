"""Samplers over record indices: balanced pairs, evaluation pairs, triplets, PxK batches.

They take the per-record identity array of a source (and optionally the subset of
record indices of one split) and return record indices; they never decode images.
Identities with fewer than two records cannot give a positive pair, so they are
left out of positive, triplet-anchor and PxK sampling, with a warning giving their
count; they still serve as negatives. A record is never paired with itself.
"""

from __future__ import annotations

import warnings

import numpy as np


class IdentityIndex:
  """Records grouped by identity, for sampling.

  Args:
    identities: int [N], identity of every record of the source.
    records: optional record indices to sample from (one split); default all.
    warn: warn when identities with fewer than two records are left out.
  """

  def __init__(self, identities, records=None, *, warn: bool = True):
    identities = np.asarray(identities)
    if identities.ndim != 1 or not np.issubdtype(identities.dtype, np.integer):
      raise ValueError(f"identities must be a 1-D integer array, got shape {identities.shape}")
    records = np.arange(len(identities)) if records is None else np.asarray(records, np.int64)
    if records.size == 0:
      raise ValueError("cannot sample from an empty set of records")
    self._identities = identities
    ids = identities[records]
    order = np.argsort(ids, kind="stable")
    self.records = records[order]  # grouped by identity
    self.record_ids = ids[order]
    self.unique_ids, self.starts, self.counts = np.unique(
      self.record_ids, return_index=True, return_counts=True
    )
    eligible = self.counts >= 2
    self.num_singletons = int((~eligible).sum())
    if self.num_singletons and warn:
      warnings.warn(
        f"{self.num_singletons} of {len(self.counts)} identities have fewer than two images "
        "and are left out of positive sampling (they still serve as negatives)",
        stacklevel=2,
      )
    self.eligible = np.flatnonzero(eligible)  # positions into unique_ids
    self._group_of = np.repeat(np.arange(len(self.counts)), self.counts)
    self._eligible_positions = np.flatnonzero(eligible[self._group_of])

  @property
  def num_identities(self) -> int:
    return len(self.unique_ids)

  def _require_positives(self) -> None:
    if self.eligible.size == 0:
      raise ValueError(
        "no identity has two or more images, so no positive pair exists; "
        "each identity needs at least two images"
      )

  def _require_negatives(self) -> None:
    if self.num_identities < 2:
      raise ValueError("only one identity: negative pairs need at least two identities")

  def positive_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n positive pairs (anchor uniform over eligible records, partner a different record)."""
    self._require_positives()
    pos = self._eligible_positions[rng.integers(len(self._eligible_positions), size=n)]
    group = self._group_of[pos]
    start, count = self.starts[group], self.counts[group]
    j = rng.integers(0, count - 1)  # one of the count-1 other records
    j = j + (j >= pos - start)
    return self.records[pos], self.records[start + j]

  def negative_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n negative pairs, both records uniform over records, identities different."""
    self._require_negatives()
    a = rng.integers(len(self.records), size=n)
    b = rng.integers(len(self.records), size=n)
    same = self.record_ids[a] == self.record_ids[b]
    while same.any():  # rejection; terminates since there are >= 2 identities
      b[same] = rng.integers(len(self.records), size=int(same.sum()))
      same = self.record_ids[a] == self.record_ids[b]
    return self.records[a], self.records[b]

  def pairs(
    self, n: int, rng: np.random.Generator, positive_fraction: float = 0.5, *, exact: bool = True
  ) -> dict[str, np.ndarray]:
    """n pairs, shuffled: {"a", "b", "label"} (label 1 = same identity).

    With `exact` the number of positives is round(n * positive_fraction); otherwise
    each pair is positive with probability `positive_fraction`.
    """
    if not 0.0 <= positive_fraction <= 1.0:
      raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
    num_pos = (
      int(round(n * positive_fraction)) if exact else int(rng.binomial(n, positive_fraction))
    )
    pa, pb = self.positive_pairs(num_pos, rng) if num_pos else (np.zeros(0, int),) * 2
    na, nb = self.negative_pairs(n - num_pos, rng) if n - num_pos else (np.zeros(0, int),) * 2
    a, b = np.concatenate([pa, na]), np.concatenate([pb, nb])
    label = np.concatenate([np.ones(num_pos, np.int32), np.zeros(n - num_pos, np.int32)])
    perm = rng.permutation(n)
    return {"a": a[perm], "b": b[perm], "label": label[perm]}

  def triplets(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n triplets {"anchor", "positive", "negative"} of record indices."""
    self._require_negatives()
    anchor, positive = self.positive_pairs(n, rng)
    anchor_ids = self._identities[anchor]
    neg = rng.integers(len(self.records), size=n)
    same = self.record_ids[neg] == anchor_ids
    while same.any():
      neg[same] = rng.integers(len(self.records), size=int(same.sum()))
      same = self.record_ids[neg] == anchor_ids
    return {"anchor": anchor, "positive": positive, "negative": self.records[neg]}

  def pxk(
    self, p: int, k: int, rng: np.random.Generator, groups: np.ndarray | None = None
  ) -> np.ndarray:
    """Record indices [p * k]: p distinct identities x k records each (grouped).

    An identity with fewer than k records (but at least two) repeats its records
    in a random order, each at most ceil(k / count) times. With `groups` (the group of
    every record of the source, e.g. an Omniglot character's alphabet) the batch is
    hard: one group is drawn (in proportion to its identities) and gives as many of the
    p identities as it has; any left are drawn from the other groups.
    """
    self._require_positives()
    if p < 2 or k < 2:
      raise ValueError(f"PxK batches need p >= 2 identities and k >= 2 images, got p={p}, k={k}")
    if p > self.eligible.size:
      raise ValueError(
        f"PxK batches need p={p} identities with two or more images, but only "
        f"{self.eligible.size} exist in this split; lower p or use more identities"
      )
    if groups is None:
      chosen = rng.choice(self.eligible, size=p, replace=False)
    else:
      group_of = np.asarray(groups)[self.records[self.starts[self.eligible]]]
      first = group_of[rng.integers(len(group_of))]  # a group, in proportion to its size
      mine = rng.permutation(self.eligible[group_of == first])[:p]
      rest = self.eligible[group_of != first]
      chosen = np.concatenate([mine, rng.choice(rest, size=p - len(mine), replace=False)])
    out = []
    for g in chosen:
      mine = self.records[self.starts[g] : self.starts[g] + self.counts[g]]
      out.append(rng.permutation(mine)[np.arange(k) % len(mine)])
    return np.concatenate(out)


def sample_pairs(
  identities, num_pairs: int, *, positive_fraction: float = 0.5, records=None, seed: int = 0
) -> dict[str, np.ndarray]:
  """A fixed pair list {"a", "b", "label"} [num_pairs]: the same for the same arguments.

  Use it for evaluation pairs: draw once per split and reuse at every evaluation.
  """
  index = IdentityIndex(identities, records)
  return index.pairs(num_pairs, np.random.default_rng([seed, 0xBA1]), positive_fraction)


def sample_triplets(identities, num_triplets: int, *, records=None, seed: int = 0):
  """A fixed triplet list {"anchor", "positive", "negative"} [num_triplets]."""
  index = IdentityIndex(identities, records)
  return index.triplets(num_triplets, np.random.default_rng([seed, 0x7B1]))


def sample_pxk(identities, p: int, k: int, *, records=None, seed: int = 0) -> np.ndarray:
  """One PxK batch of record indices [p * k]."""
  index = IdentityIndex(identities, records)
  return index.pxk(p, k, np.random.default_rng([seed, 0x9C1]))


def fixed_pairs(
  identities: np.ndarray, records: np.ndarray, num_pairs: int, positive_fraction: float, seed: int
) -> dict[str, np.ndarray]:
  """A fixed list of distinct unordered pairs of `records`, never an image with itself.

  Genuine pairs are drawn without replacement from all same-identity pairs, at most
  `positive_fraction * num_pairs` of them (fewer when the split has fewer); the rest
  are impostor pairs drawn without replacement from all different-identity pairs.
  When the split has fewer pairs than asked, all of them are used.

  Returns:
    {"a": record indices [N], "b": record indices [N], "label": int32 [N]} in a
    seeded random order.
  """
  records = np.asarray(records, np.int64)
  ids = np.asarray(identities)[records]
  rng = np.random.default_rng([seed, 0xFA1])
  genuine = []
  for ident in np.unique(ids):
    pos = np.flatnonzero(ids == ident)
    i, j = np.triu_indices(len(pos), 1)
    genuine.append(np.stack([pos[i], pos[j]], 1))
  genuine = np.concatenate(genuine) if genuine else np.zeros((0, 2), np.int64)
  n = len(records)
  num_impostor_total = n * (n - 1) // 2 - len(genuine)
  num_pos = min(int(round(positive_fraction * num_pairs)), len(genuine))
  num_neg = min(num_pairs - num_pos, num_impostor_total)
  pos = genuine[rng.choice(len(genuine), num_pos, replace=False)]
  if num_neg * 2 >= num_impostor_total:
    # Dense case (small splits): enumerate every impostor pair and choose.
    i, j = np.triu_indices(n, 1)
    diff = ids[i] != ids[j]
    all_neg = np.stack([i[diff], j[diff]], 1)
    neg = all_neg[rng.choice(len(all_neg), num_neg, replace=False)]
  else:
    # Sparse case: rejection-sample distinct different-identity pairs.
    keys = np.zeros(0, np.int64)
    while len(keys) < num_neg:
      i = rng.integers(0, n, 2 * num_neg)
      j = rng.integers(0, n, 2 * num_neg)
      lo, hi = np.minimum(i, j), np.maximum(i, j)
      ok = ids[lo] != ids[hi]
      new = lo[ok] * n + hi[ok]
      _, first = np.unique(np.concatenate([keys, new]), return_index=True)
      keys = np.concatenate([keys, new])[np.sort(first)]  # keep the draw order: reproducible
    keys = keys[:num_neg]
    neg = np.stack([keys // n, keys % n], 1)
  pairs = np.concatenate([pos, neg])
  labels = np.r_[np.ones(len(pos), np.int32), np.zeros(len(neg), np.int32)]
  order = rng.permutation(len(pairs))
  return {
    "a": records[pairs[order, 0]],
    "b": records[pairs[order, 1]],
    "label": labels[order],
  }
