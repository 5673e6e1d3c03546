r"""Runs one jaxsim experiment from a config.

    python -m experiments.run --config=NAME[:ARG] [--config.a.b=VALUE ...] [--workdir=DIR]

`NAME` is a module in `experiments/configs/` (`face_fp`, ...) or a path to a
config file. `ARG` is passed to its `get_config(arg)` (for example `runlocal`).
Any config value can be overridden from the command line; a misspelt key fails.

The run writes everything into `--workdir` (default `runs/NAME`): the resolved
`config.json` first, then the task's logs, metrics, report and checkpoints.
Re-running with the same workdir resumes.

Multi-process launches (GPU nodes, TPU pod slices) set `JAXSIM_DISTRIBUTED=1`
(or pass `--distributed`), which makes this entry point call
`jax.distributed.initialize()` before anything touches a device; see
`jaxsim.parallel.initialize_distributed` for the variables it reads.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"


def available_configs() -> list[str]:
  """Names accepted by `--config=NAME`."""
  return sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.stem.startswith("_"))


_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config name (one of: " + ", ".join(available_configs()) + ") or a path to a config "
  "file, optionally followed by ':ARG' for its get_config(arg).",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory; default runs/NAME.")
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed",
  os.environ.get("JAXSIM_DISTRIBUTED", "0").lower() in ("1", "true", "yes"),
  "Call jax.distributed.initialize() first (default from $JAXSIM_DISTRIBUTED).",
)


class UnknownConfigError(ValueError):
  pass


def resolve_config_value(value: str) -> str:
  """Maps `NAME[:ARG]` or `PATH[:ARG]` to `PATH[:ARG]`, failing on unknown names."""
  name, sep, arg = value.partition(":")
  if name.endswith(".py") or "/" in name:
    path = pathlib.Path(name)
    if not path.is_file():
      raise UnknownConfigError(f"config file {name!r} does not exist")
  else:
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
      raise UnknownConfigError(
        f"unknown config {name!r}; available configs: {', '.join(available_configs())}"
      )
  return f"{path}{sep}{arg}"


def _rewrite_argv(argv: list[str]) -> list[str]:
  """Resolves the `--config` value in argv before absl parses it."""
  out = list(argv)
  for i, item in enumerate(out):
    if item.startswith("--config="):
      out[i] = "--config=" + resolve_config_value(item[len("--config=") :])
    elif item == "--config" and i + 1 < len(out):
      out[i + 1] = resolve_config_value(out[i + 1])
  return out


def config_name() -> str:
  return pathlib.Path(config_flags.get_config_filename(flags.FLAGS["config"])).stem


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _CONFIG.value
  if config is None:
    raise app.UsageError(
      "--config is required; available configs: " + ", ".join(available_configs())
    )
  if _DISTRIBUTED.value:
    from jaxsim import parallel  # noqa: PLC0415 -- import JAX only after flags parse

    parallel.initialize_distributed()

  import jax  # noqa: PLC0415

  workdir = pathlib.Path(_WORKDIR.value or pathlib.Path("runs") / config_name())
  if "task" not in config:
    raise app.UsageError(f"config {config_name()!r} has no 'task' field")
  task = importlib.import_module(f"jaxsim.tasks.{config.task}")
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  logging.info("config %s -> workdir %s", config_name(), workdir)
  metrics = task.run(config, workdir)
  if jax.process_index() == 0:
    print(json.dumps({"workdir": str(workdir), "metrics": metrics}, indent=2, default=str))


def cli() -> None:
  try:
    sys.argv = _rewrite_argv(sys.argv)
  except UnknownConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  app.run(main)


if __name__ == "__main__":
  cli()
