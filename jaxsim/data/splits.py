"""Identity-disjoint splits (train / val / test; enrolled / outsider; gallery / probe).

Everything works on the per-record identity array of a source (`source.identities`),
never on decoded images. Splits are fixed by a seed; disjointness is asserted.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np


def _check_identities(identities) -> np.ndarray:
  identities = np.asarray(identities)
  if identities.ndim != 1 or not np.issubdtype(identities.dtype, np.integer):
    raise ValueError(
      f"identities must be a 1-D integer array (one id per record), got dtype "
      f"{identities.dtype} and shape {identities.shape}"
    )
  return identities


def assert_disjoint(groups: Mapping[str, np.ndarray]) -> None:
  """Raises AssertionError if any two groups share an element."""
  names = list(groups)
  for i, a in enumerate(names):
    for b in names[i + 1 :]:
      shared = np.intersect1d(groups[a], groups[b])
      if shared.size:
        raise AssertionError(
          f"splits {a!r} and {b!r} share {shared.size} element(s), e.g. {shared[:5].tolist()}"
        )


def split_identities(
  identities,
  fractions: Mapping[str, float] | None = None,
  *,
  counts: Mapping[str, int] | None = None,
  seed: int = 0,
) -> dict[str, np.ndarray]:
  """Partitions the distinct identities into named, disjoint groups.

  Args:
    identities: int [N], the identity of each record.
    fractions: name -> fraction of identities (summing to at most 1; the last named
      split takes the rounding remainder when they sum to 1). Default
      {"train": 0.7, "val": 0.15, "test": 0.15}.
    counts: name -> number of identities, instead of fractions.
    seed: permutation seed; the same seed gives the same split.

  Returns:
    name -> sorted identity ids of that split.

  Raises:
    ValueError: too few identities for the requested split sizes (every split gets
      at least one identity).
  """
  ids = np.unique(_check_identities(identities))
  n = len(ids)
  if counts is not None and fractions is not None:
    raise ValueError("give either fractions or counts, not both")
  if counts is None:
    fractions = dict(fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
    if any(f < 0 for f in fractions.values()) or sum(fractions.values()) > 1 + 1e-9:
      raise ValueError(f"split fractions must be >= 0 and sum to at most 1, got {fractions}")
    names = list(fractions)
    sizes = [int(np.floor(fractions[k] * n + 1e-9)) for k in names]
    if abs(sum(fractions.values()) - 1.0) < 1e-9:
      sizes[-1] = n - sum(sizes[:-1])
    # Rounding down must not empty a split that was asked for.
    wanted = {k: fractions[k] for k in names}
  else:
    names = list(counts)
    sizes = [int(counts[k]) for k in names]
    wanted = dict(counts)
  too_small = [k for k, s in zip(names, sizes, strict=True) if s < 1 and wanted[k] > 0]
  if too_small or sum(sizes) > n:
    raise ValueError(
      f"too few identities: {n} distinct identities cannot fill splits "
      f"{dict(zip(names, sizes, strict=True))} (requested {wanted}); every split needs at "
      "least one identity. Use more identities (a larger dataset) or fewer / smaller splits."
    )
  order = np.random.default_rng([seed, 0x5B1]).permutation(ids)
  out, start = {}, 0
  for name, size in zip(names, sizes, strict=True):
    out[name] = np.sort(order[start : start + size])
    start += size
  assert_disjoint(out)
  return out


def records_of(identities, identity_groups: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Record indices [n_k] of each identity group; asserts the record sets are disjoint."""
  identities = _check_identities(identities)
  out = {k: np.flatnonzero(np.isin(identities, v)) for k, v in identity_groups.items()}
  assert_disjoint(out)
  return out


def split_records(
  identities,
  fractions: Mapping[str, float] | None = None,
  *,
  counts: Mapping[str, int] | None = None,
  seed: int = 0,
  val_fold: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """`split_identities` (then `rotate_validation` by `val_fold`), then the record indices
  of each split: (identity groups, records)."""
  groups = split_identities(identities, fractions, counts=counts, seed=seed)
  if val_fold:
    groups = rotate_validation(groups, val_fold)
  return groups, records_of(identities, groups)


def rotate_validation(groups: Mapping[str, np.ndarray], fold: int) -> dict[str, np.ndarray]:
  """Another train / val partition of the same non-test identities, for cross-fitting.

  The val and train identities are pooled (val first) and fold k takes the pool's k-th
  block of len(val) identities as validation, the rest as training: fold 0 is `groups`
  unchanged, and with train = m x val the folds 0..m put every identity in validation
  exactly once. Other groups (test) are kept as they are.
  """
  if fold < 0:
    raise ValueError(f"val_fold must be >= 0, got {fold}")
  if "train" not in groups or "val" not in groups or not len(groups["val"]):
    raise ValueError(
      f"rotating validation needs non-empty train and val groups, got {sorted(groups)}"
    )
  pool = np.concatenate([np.asarray(groups["val"]), np.asarray(groups["train"])])
  n_val = len(groups["val"])
  start = fold * n_val
  if start + n_val > len(pool):
    raise ValueError(
      f"val_fold={fold} needs {start + n_val} train + val identities, there are {len(pool)}; "
      f"use a fold below {len(pool) // n_val}"
    )
  in_val = np.zeros(len(pool), bool)
  in_val[start : start + n_val] = True
  return {**groups, "val": pool[in_val], "train": pool[~in_val]}


def enrolled_outsider_split(
  identities, num_enrolled: int, *, seed: int = 0
) -> dict[str, np.ndarray]:
  """Open-set split of identities into `enrolled` (num_enrolled) and `outsider` (the rest)."""
  n = len(np.unique(_check_identities(identities)))
  if not 0 < num_enrolled < n:
    raise ValueError(
      f"too few identities: num_enrolled={num_enrolled} must be between 1 and {n - 1} for "
      f"{n} identities (outsiders need at least one identity)"
    )
  return split_identities(
    identities, counts={"enrolled": num_enrolled, "outsider": n - num_enrolled}, seed=seed
  )


def gallery_probe_split(
  identities, records: Sequence[int] | np.ndarray, gallery_per_identity: int = 1, *, seed: int = 0
) -> dict[str, np.ndarray]:
  """Splits the records of enrolled identities into gallery and probe images.

  Each identity puts `gallery_per_identity` random records in the gallery and the
  rest in the probe set; identities with no record left for probing keep all their
  records in the gallery.

  Returns:
    {"gallery": record indices, "probe": record indices}, disjoint.
  """
  identities = _check_identities(identities)
  records = np.asarray(records)
  if gallery_per_identity < 1:
    raise ValueError(f"gallery_per_identity must be >= 1, got {gallery_per_identity}")
  rng = np.random.default_rng([seed, 0x6A1])
  gallery, probe = [], []
  for ident in np.unique(identities[records]):
    mine = rng.permutation(records[identities[records] == ident])
    gallery.append(mine[:gallery_per_identity])
    probe.append(mine[gallery_per_identity:])
  out = {"gallery": np.sort(np.concatenate(gallery)), "probe": np.sort(np.concatenate(probe))}
  assert_disjoint(out)
  return out


def enrolment_split(
  identities, records, gallery_per_identity: int, val_probes_per_identity: int, *, seed: int = 0
) -> dict[str, np.ndarray]:
  """Splits each enrolled identity's records into gallery, validation and test probes.

  Like `gallery_probe_split`, with a validation share: every identity needs at least
  gallery + val_probes + 1 records, so that it has a test probe.

  Returns:
    {"gallery", "probe_val", "probe_test"}: sorted record indices, disjoint.
  """
  identities = _check_identities(identities)
  records = np.asarray(records)
  g, v = gallery_per_identity, val_probes_per_identity
  rng = np.random.default_rng([seed, 0xE4])
  out = {"gallery": [], "probe_val": [], "probe_test": []}
  for ident in np.unique(identities[records]):
    mine = rng.permutation(records[identities[records] == ident])
    if len(mine) < g + v + 1:
      raise ValueError(
        f"enrolled identity {ident} has {len(mine)} images but split.gallery_per_identity="
        f"{g} + split.val_probes_per_identity={v} + 1 test probe are needed"
      )
    out["gallery"].append(mine[:g])
    out["probe_val"].append(mine[g : g + v])
    out["probe_test"].append(mine[g + v :])
  out = {k: np.sort(np.concatenate(parts)) for k, parts in out.items()}
  assert_disjoint(out)
  return out


def stratified_split(
  labels: np.ndarray, fractions: dict[str, float], seed: int, max_per_split: int = 0
) -> dict[str, np.ndarray]:
  """Record indices per split, the same fractions within every class; disjoint by construction.

  For tasks that split by record rather than identity (e.g. digits: every class must
  occur in every split).

  `max_per_split > 0` caps each split (a random subset of its records).
  """
  rng = np.random.default_rng([seed, 0x5D17])
  names = list(fractions)
  out: dict[str, list] = {n: [] for n in names}
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    bounds = np.round(np.cumsum([fractions[n] for n in names]) * len(idx)).astype(int)
    bounds[-1] = len(idx)
    for n, lo, hi in zip(names, np.concatenate([[0], bounds[:-1]]), bounds, strict=True):
      out[n].extend(idx[lo:hi].tolist())
  result = {}
  for n in names:
    r = np.sort(np.asarray(out[n], np.int64))
    if max_per_split and len(r) > max_per_split:
      r = np.sort(rng.choice(r, max_per_split, replace=False))
    if len(r) == 0:
      raise ValueError(f"split {n!r} is empty; use more images or larger fractions")
    result[n] = r
  return result


def group_and_drawer_split(
  classes: np.ndarray,
  groups: np.ndarray,
  drawers: np.ndarray,
  *,
  num_val: int,
  num_test: int,
  num_train_drawers: int,
  min_eval_classes: int = 1,
  seed: int = 0,
  val_fold: int = 0,
) -> dict:
  """Omniglot's split (Koch et al. 2015): by group (alphabet) and by drawer.

  Validation and test groups are drawn, by seed, from the groups with at least
  `min_eval_classes` classes (so that N-way within-group episodes fit); every other
  group trains. Drawers are split once: `num_train_drawers` train, the rest are the
  evaluation drawers, whose images are the only ones the validation and test records use.
  `val_fold` k > 0 keeps the test groups and drawers and takes the k-th next block of
  `num_val` eligible groups of the seed's order as validation instead (fold 0's
  validation groups then train): cross-fitting a choice without touching the test groups.

  Returns:
    `{"groups": {train, val, test: sorted group ids}, "drawers": {train, eval: sorted
    drawer ids}, "records": {train, val, test: record indices}}`; training records are
    the training groups' images by training drawers.

  Raises:
    ValueError: too few eligible groups or drawers.
  """
  classes, groups, drawers = (np.asarray(x) for x in (classes, groups, drawers))
  all_groups, all_drawers = np.unique(groups), np.unique(drawers)
  class_count = {int(g): len(np.unique(classes[groups == g])) for g in all_groups}
  eligible = np.array([g for g in all_groups if class_count[int(g)] >= min_eval_classes])
  if len(eligible) < num_val + num_test or len(all_groups) <= num_val + num_test:
    raise ValueError(
      f"the split needs {num_val} validation and {num_test} test groups with at least "
      f"{min_eval_classes} classes and one training group left; the data has "
      f"{len(all_groups)} groups, {len(eligible)} of them with {min_eval_classes} classes"
    )
  if val_fold < 0 or num_test + (val_fold + 1) * num_val > len(eligible):
    raise ValueError(
      f"split.val_fold={val_fold} needs {num_test} test and {val_fold + 1} blocks of "
      f"{num_val} validation groups with at least {min_eval_classes} classes; the data has "
      f"{len(eligible)}: use a fold from 0 to {(len(eligible) - num_test) // num_val - 1}"
    )
  if not 1 <= num_train_drawers < len(all_drawers):
    raise ValueError(
      f"num_train_drawers must leave evaluation drawers: got {num_train_drawers} of "
      f"{len(all_drawers)} drawers"
    )
  rng = np.random.default_rng([seed, 0x0A1F])
  chosen = rng.permutation(eligible)
  test = chosen[num_val : num_val + num_test]
  val = chosen[:num_val]
  if val_fold:
    start = num_val + num_test + (val_fold - 1) * num_val
    val = chosen[start : start + num_val]
  out_groups = {"val": np.sort(val), "test": np.sort(test)}
  held_out = np.concatenate([val, test])
  out_groups = {"train": np.setdiff1d(all_groups, held_out), **out_groups}
  drawer_perm = rng.permutation(all_drawers)
  out_drawers = {
    "train": np.sort(drawer_perm[:num_train_drawers]),
    "eval": np.sort(drawer_perm[num_train_drawers:]),
  }
  assert_disjoint(out_groups)
  assert_disjoint(out_drawers)
  in_drawers = {k: np.isin(drawers, v) for k, v in out_drawers.items()}
  records = {
    "train": np.flatnonzero(np.isin(groups, out_groups["train"]) & in_drawers["train"]),
    "val": np.flatnonzero(np.isin(groups, out_groups["val"]) & in_drawers["eval"]),
    "test": np.flatnonzero(np.isin(groups, out_groups["test"]) & in_drawers["eval"]),
  }
  return {"groups": out_groups, "drawers": out_drawers, "records": records}


def group_and_drawer_counts(
  split: dict, classes: np.ndarray, group_name: str = "groups", class_name: str = "classes"
) -> dict[str, float]:
  """Sizes of a `group_and_drawer_split`: `num_{group_name}_{part}`, `num_images_{part}`,
  `num_{class_name}_{part}` per part (train, val, test) and `num_train_drawers`."""
  classes = np.asarray(classes)
  out = {f"num_{group_name}_{k}": float(len(v)) for k, v in split["groups"].items()}
  for k, v in split["records"].items():
    out[f"num_images_{k}"] = float(len(v))
    out[f"num_{class_name}_{k}"] = float(len(np.unique(classes[v])))
  out["num_train_drawers"] = float(len(split["drawers"]["train"]))
  return out


def manifest(
  identity_groups: Mapping[str, np.ndarray],
  *,
  identity_names: Sequence[str] | None = None,
  records: Mapping[str, np.ndarray] | None = None,
  extra: Mapping | None = None,
) -> dict:
  """The split manifest: identities (and names, record counts) per split, plus `extra`.

  `jaxsim.report.write_manifest` writes it; `read_manifest` reads the groups back.
  """
  assert_disjoint(identity_groups)
  out: dict = {"splits": {}}
  for name, ids in identity_groups.items():
    entry: dict = {"identities": [int(i) for i in ids]}
    if identity_names is not None:
      entry["identity_names"] = [str(identity_names[int(i)]) for i in ids]
    if records is not None:
      entry["num_records"] = int(len(records[name]))
    out["splits"][name] = entry
  if extra:
    out.update(extra)
  return out


def read_manifest(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Identity groups from a manifest written by `jaxsim.report.write_manifest`."""
  data = json.loads(pathlib.Path(path).read_text())
  return {k: np.asarray(v["identities"], np.int64) for k, v in data["splits"].items()}
