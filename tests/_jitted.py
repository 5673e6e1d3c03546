"""A module's init and apply as single jitted programs, for tests that only need values.

Run eagerly, a Flax init or apply compiles every operation on its own, each in 25-50 ms
on one XLA thread: a DigitCNN's eager init and apply compiled 52 programs in 2.7 s,
against 0.7 s for one jitted init (at `train.INIT_COMPILER_OPTIONS`, as
`train.init_variables` compiles it: the same values bit for bit, tested in train_test)
and one jitted apply. Keyword arguments (`train`, `method`, `mutable`, ...) are fixed
when the program is built. `check_grads` likewise evaluates a jitted function.
"""

import functools

import jax
from jax.test_util import check_grads as _check_grads

from jaxsim.train import INIT_COMPILER_OPTIONS


def init(module, *args, **kwargs):
  """`module.init(*args, **kwargs)`, jitted as `train.init_variables` jits it."""
  program = functools.partial(module.init, **kwargs)
  return jax.jit(program, compiler_options=INIT_COMPILER_OPTIONS)(*args)


def apply(module, variables, *args, **kwargs):
  """`module.apply(variables, *args, **kwargs)`, jitted."""
  return jax.jit(functools.partial(module.apply, **kwargs))(variables, *args)


def check_grads(f, args, **kwargs):
  """`jax.test_util.check_grads` of `f` jitted: a few programs, compiled once, instead of
  a compile per eager operation of every evaluation at every perturbed input."""
  _check_grads(jax.jit(f), args, **kwargs)
