"""JAX's persistent compilation cache, switched on for a run.

XLA:CPU takes 10-20 s to compile a ResNet-18 train step on a 2-core machine, and a
task compiles the same program more than once: face_fp's correlation sweep trains
models with the main model's shapes, and a run resumed after a crash compiles
everything again. With the cache on, a program whose HLO was compiled before is
loaded from disk instead (a second or two). A cached executable is the one the
compiler produced, so the numbers are the same with or without it.

`experiments.run` keeps the cache in the workdir (`<workdir>/xla_cache`), so that
nothing outside the run's folder is written; `$JAX_COMPILATION_CACHE_DIR`, when set,
takes precedence (a cache shared across runs), and so does
`$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` over `MIN_COMPILE_SECONDS`.
"""

from __future__ import annotations

import os
import pathlib

import jax

# Programs that compile faster than this are not written (JAX's default is 1 s; the
# eager ops of a model init compile in about 0.2 s each and are worth keeping too).
MIN_COMPILE_SECONDS = 0.2


def enable(path: str | os.PathLike | None) -> str | None:
  """Keeps compiled programs in `path` (created if missing); returns the directory used.

  `$JAX_COMPILATION_CACHE_DIR` wins over `path`; `None` or "" with no environment
  variable leaves the cache off. Call before the first compilation of the run.
  """
  chosen = os.environ.get("JAX_COMPILATION_CACHE_DIR") or (str(path) if path else "")
  if not chosen:
    return None
  pathlib.Path(chosen).mkdir(parents=True, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", chosen)
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # a set floor wins
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
  return chosen
