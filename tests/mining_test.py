"""Mining picks the expected indices on a constructed example."""

import jax.numpy as jnp
import numpy as np

from jaxsim import distances, mining

# Four points on a line, two identities: distances are easy to read off.
#        0: [0, 1, 3, 6]   1: [1, 0, 2, 5]   2: [3, 2, 0, 3]   3: [6, 5, 3, 0]
EMB = jnp.array([[0.0], [1.0], [3.0], [6.0]])
LABELS = jnp.array([0, 0, 1, 1])
D = distances.pairwise_euclidean_distances(EMB)


def test_masks():
  pos = np.array(mining.positive_mask(LABELS))
  neg = np.array(mining.negative_mask(LABELS))
  np.testing.assert_array_equal(pos, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
  np.testing.assert_array_equal(neg, [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
  assert int(mining.triplet_mask(LABELS).sum()) == 8


def test_where_removes_rows_from_every_pair():
  where = jnp.array([True, False, True, True])
  pos = np.array(mining.positive_mask(LABELS, where))
  neg = np.array(mining.negative_mask(LABELS, where))
  assert not pos[1].any() and not pos[:, 1].any()
  assert not neg[1].any() and not neg[:, 1].any()


def test_batch_hard_indices():
  mined = mining.batch_hard_triplets(D, LABELS)
  np.testing.assert_array_equal(mined.positive, [1, 0, 3, 2])
  np.testing.assert_array_equal(mined.negative, [2, 2, 1, 1])
  np.testing.assert_array_equal(mined.valid, [True] * 4)


def test_batch_hard_invalid_anchor_without_positive():
  labels = jnp.array([0, 0, 1, 2])  # identities 1 and 2 have a single image
  mined = mining.batch_hard_triplets(D, labels)
  np.testing.assert_array_equal(mined.valid, [True, True, False, False])


def test_semi_hard_indices_and_fallback():
  mined = mining.semi_hard_negatives(D, LABELS)
  neg = np.array(mined.negative)
  # (0,1): d_ap=1 -> closest negative farther than 1 is 2 (d=3).
  # (1,0): d_ap=1 -> 2 (d=2). (3,2): d_ap=3 -> 1 (d=5).
  # (2,3): d_ap=3, no negative strictly farther -> fallback: farthest negative, 0 (d=3).
  assert (neg[0, 1], neg[1, 0], neg[3, 2], neg[2, 3]) == (2, 2, 1, 0)
  semi = np.array(mined.semi_hard)
  assert semi[0, 1] and semi[1, 0] and semi[3, 2] and not semi[2, 3]
  np.testing.assert_array_equal(mined.valid, mining.positive_mask(LABELS))
