r"""Checks sampled random-unit-vector distances against the exact sqrt(2) null.

python -m experiments.run --config=sqrt2_null
"""

import ml_collections

from experiments.configs import common

VARIANTS = ("runlocal",)


def get_config(arg=None):
  args = common.parse_args(arg, VARIANTS, "sqrt2_null")
  config = ml_collections.ConfigDict()
  config.task = "sqrt2_null"
  config.seed = 0
  # Simulated data only: pairs of independent random unit vectors in each dimension.
  config.data = ml_collections.ConfigDict({"dims": (2, 16, 256), "num_pairs": 100_000})
  if "runlocal" in args:
    config.data.num_pairs = 2_000
  return config
