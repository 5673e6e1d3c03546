"""The `train` config section's defaults, apart from `jaxsim.train` so that it needs no JAX.

Config files (`experiments/configs/*.py`) build on it and must import without JAX, so
that a bad value is reported before JAX starts.
"""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  """The `train` section every task config starts from (override what differs)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.steps = 1000
  c.batch_size = 64  # global batch, over all processes and devices
  c.optimizer = "adam"  # adam | adamw | sgd
  c.learning_rate = 1e-3
  c.schedule = "cosine"  # cosine | constant (both after a linear warmup)
  c.warmup_steps = 0
  c.final_lr_fraction = 0.0  # cosine ends at learning_rate * final_lr_fraction
  c.weight_decay = 0.0  # never applied to biases, norms and scalars (ndim <= 1)
  c.momentum = 0.9  # sgd only
  c.b1 = 0.9
  c.b2 = 0.999
  c.grad_clip_norm = 0.0  # 0: no clipping
  c.log_every = 10
  c.eval_every = 0  # 0: evaluate only at the end
  c.checkpoint_every = 100  # 0: only after the last step
  c.keep_checkpoints = 2
  c.best_metric = ""  # eval metric key that ranks checkpoints; "": none
  c.best_mode = "max"
  c.async_checkpoints = True
  c.tensorboard = False
  return c
