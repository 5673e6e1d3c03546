"""Identity splits and samplers: disjointness, determinism, sampler statistics."""

import json

import numpy as np
import pytest

from jaxsim import report
from jaxsim.data import sampling, splits

IDS = np.repeat(np.arange(40), 5)


def test_split_identities_is_disjoint_complete_and_seeded():
  groups, records = splits.split_records(IDS, seed=3)
  assert [len(groups[k]) for k in ("train", "val", "test")] == [28, 6, 6]
  assert sorted(np.concatenate(list(groups.values())).tolist()) == list(range(40))
  splits.assert_disjoint(groups)
  splits.assert_disjoint(records)
  for name in groups:
    assert set(IDS[records[name]]) == set(groups[name].tolist())
  again = splits.split_identities(IDS, seed=3)
  other = splits.split_identities(IDS, seed=4)
  assert all(np.array_equal(groups[k], again[k]) for k in groups)
  assert not np.array_equal(groups["test"], other["test"])


def test_split_by_counts_and_assert_disjoint():
  groups = splits.split_identities(IDS, counts={"a": 10, "b": 5}, seed=0)
  assert len(groups["a"]) == 10 and len(groups["b"]) == 5
  with pytest.raises(AssertionError, match="share 1 element"):
    splits.assert_disjoint({"x": np.array([1, 2]), "y": np.array([2, 3])})


def test_too_few_identities_for_the_requested_split_sizes():
  with pytest.raises(ValueError, match=r"too few identities: 3 distinct identities"):
    splits.split_identities(np.array([0, 1, 2]), {"train": 0.8, "val": 0.1, "test": 0.1})
  with pytest.raises(ValueError, match="too few identities"):
    splits.split_identities(IDS, counts={"train": 30, "test": 20})
  with pytest.raises(ValueError, match="too few identities"):
    splits.enrolled_outsider_split(IDS, 40)


def test_open_set_splits():
  groups = splits.enrolled_outsider_split(IDS, 10, seed=1)
  assert len(groups["enrolled"]) == 10 and len(groups["outsider"]) == 30
  enrolled_records = splits.records_of(IDS, {"e": groups["enrolled"]})["e"]
  gp = splits.gallery_probe_split(IDS, enrolled_records, gallery_per_identity=2, seed=0)
  assert len(gp["gallery"]) == 20 and len(gp["probe"]) == 30
  assert set(IDS[gp["gallery"]]) == set(groups["enrolled"].tolist())
  assert not set(gp["gallery"]) & set(gp["probe"])


def test_manifest_round_trip(tmp_path):
  groups, records = splits.split_records(IDS, seed=0)
  names = [f"person{i}" for i in range(40)]
  manifest = splits.manifest(groups, identity_names=names, records=records, extra={"seed": 0})
  path = report.write_manifest(manifest, tmp_path / "run", process_index=0)
  assert path == tmp_path / "run" / report.MANIFEST
  assert report.write_manifest(manifest, tmp_path / "other", process_index=1) is None
  assert not (tmp_path / "other").exists()
  data = json.loads(path.read_text())
  assert data["seed"] == 0 and data["splits"]["test"]["num_records"] == 30
  assert data["splits"]["val"]["identity_names"][0] == names[groups["val"][0]]
  back = splits.read_manifest(path)
  assert all(np.array_equal(back[k], groups[k]) for k in groups)


def test_pairs_are_valid_balanced_and_never_self_pairs():
  p = sampling.sample_pairs(IDS, 2000, positive_fraction=0.25, seed=0)
  assert p["label"].dtype == np.int32 and p["label"].sum() == 500
  np.testing.assert_array_equal(p["label"], (IDS[p["a"]] == IDS[p["b"]]).astype(np.int32))
  assert not np.any(p["a"] == p["b"])
  again = sampling.sample_pairs(IDS, 2000, positive_fraction=0.25, seed=0)
  assert all(np.array_equal(p[k], again[k]) for k in p)  # fixed evaluation lists
  # Bernoulli mode: the positive count is binomial.
  index = sampling.IdentityIndex(IDS)
  q = index.pairs(4000, np.random.default_rng(1), 0.5, exact=False)
  assert abs(q["label"].mean() - 0.5) < 4 * 0.5 / np.sqrt(4000)
  # Anchors of positives spread over all identities (chi-square-free check: all hit).
  assert len(np.unique(IDS[p["a"][p["label"] == 1]])) == 40


def test_singletons_are_left_out_of_positives_with_a_warning():
  ids = np.concatenate([IDS, [100, 101, 102]])
  with pytest.warns(UserWarning, match="3 of 43 identities have fewer than two images"):
    index = sampling.IdentityIndex(ids)
  a, b = index.positive_pairs(3000, np.random.default_rng(0))
  assert not np.isin(ids[a], [100, 101, 102]).any() and not np.any(a == b)
  na, nb = index.negative_pairs(3000, np.random.default_rng(0))
  assert np.isin(ids[np.concatenate([na, nb])], [100, 101, 102]).any()
  with pytest.raises(ValueError, match="no identity has two or more images"):
    with pytest.warns(UserWarning):
      sampling.IdentityIndex(np.arange(5)).positive_pairs(1, np.random.default_rng(0))


def test_triplets_and_restriction_to_a_split():
  records = np.flatnonzero(IDS < 10)
  t = sampling.sample_triplets(IDS, 500, records=records, seed=2)
  assert np.all(IDS[t["anchor"]] == IDS[t["positive"]])
  assert np.all(IDS[t["anchor"]] != IDS[t["negative"]])
  assert not np.any(t["anchor"] == t["positive"])
  for key in t:
    assert np.isin(t[key], records).all()


def test_pxk_batches_structure():
  ids = np.concatenate([IDS, np.repeat([50], 2)])  # one identity with only 2 images
  index = sampling.IdentityIndex(ids)
  rng = np.random.default_rng(0)
  seen_small = False
  for _ in range(50):
    batch = index.pxk(8, 4, rng)
    groups = ids[batch].reshape(8, 4)
    assert np.all(groups == groups[:, :1]) and len(np.unique(groups[:, 0])) == 8
    for g in batch.reshape(8, 4):
      counts = np.unique(g, return_counts=True)[1]
      assert counts.max() <= 2 and len(counts) >= 2
    seen_small |= 50 in groups
  assert seen_small
  with pytest.raises(ValueError, match="only 41 exist"):
    index.pxk(42, 2, rng)


def test_pxk_within_groups_fills_the_batch_from_one_group_first():
  ids = np.repeat(np.arange(30), 4)  # 30 identities: group 0 has 10, group 1 has 20
  groups = np.where(ids < 10, 0, 1)
  index = sampling.IdentityIndex(ids)
  rng = np.random.default_rng(1)
  seen = set()
  for _ in range(40):
    batch = index.pxk(12, 4, rng, groups)
    first = ids[batch].reshape(12, 4)[:, 0]
    assert len(np.unique(first)) == 12
    g = groups[batch].reshape(12, 4)[:, 0]
    if g[0] == 0:  # all 10 of group 0, then 2 from group 1
      assert g[:10].tolist() == [0] * 10 and g[10:].tolist() == [1, 1]
    else:
      assert np.all(g == 1)
    seen.add(int(g[0]))
  assert seen == {0, 1}


def test_enrolment_split_keeps_a_test_probe_per_identity():
  records = np.flatnonzero(IDS < 5)
  out = splits.enrolment_split(IDS, records, 2, 2, seed=0)
  assert sorted(np.concatenate(list(out.values()))) == sorted(records)
  for ident in range(5):
    assert (IDS[out["gallery"]] == ident).sum() == 2
    assert (IDS[out["probe_val"]] == ident).sum() == 2
    assert (IDS[out["probe_test"]] == ident).sum() == 1
  with pytest.raises(ValueError, match="split.val_probes_per_identity"):
    splits.enrolment_split(IDS, records, 2, 3, seed=0)


def test_rotate_validation_puts_each_non_test_identity_in_val_once():
  ids = np.repeat(np.arange(40), 3)
  fractions = {"train": 0.5, "val": 0.25, "test": 0.25}
  base, _ = splits.split_records(ids, fractions, seed=1)
  folds = [splits.split_records(ids, fractions, seed=1, val_fold=k) for k in range(3)]
  np.testing.assert_array_equal(folds[0][0]["val"], base["val"])  # fold 0: the split itself
  np.testing.assert_array_equal(folds[0][0]["train"], base["train"])
  vals = np.concatenate([g["val"] for g, _ in folds])
  non_test = np.concatenate([base["train"], base["val"]])
  assert sorted(vals.tolist()) == sorted(non_test.tolist())  # each person in val once
  for groups, records in folds:
    splits.assert_disjoint(groups)
    np.testing.assert_array_equal(groups["test"], base["test"])  # test never moves
    assert len(groups["val"]) == 10 and len(groups["train"]) == 20
    assert set(ids[records["val"]].tolist()) == set(groups["val"].tolist())
  with pytest.raises(ValueError, match="val_fold=3"):
    splits.rotate_validation(base, 3)
  with pytest.raises(ValueError, match=">= 0"):
    splits.rotate_validation(base, -1)
