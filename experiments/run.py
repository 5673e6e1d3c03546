r"""Runs one jaxsim experiment from a config.

    python -m experiments.run --config=NAME[:ARG] [--config.a.b=VALUE ...] [--workdir=DIR]

`NAME` is a module in `experiments/configs/` (`face_fp`, ...) or a path to a
config file. `ARG` is passed to its `get_config(arg)`: its variants, comma separated
in any order (for example `runlocal` or `chimeric,runlocal`; `--help` lists them).
Any config value can be overridden from the command line; `--print_config` prints
the resolved config (every key, with its value) and exits. The resolved config is
validated before anything runs (`experiments/configs/common.py` has the allowed
ranges): a bad value, a misspelt key or a known data error (missing folder,
unreadable image) ends the run with one line on stderr and a non-zero exit status;
`--verbosity=1` shows the traceback of a data error. Library INFO logging is off
unless `--verbosity` asks for it (0 = INFO). The run ends with a short table of the
headline metrics (the task's `HEADLINE`) and the path of its report; everything else
is in `metrics.json`. One live run per workdir: a second one is refused.

The run writes everything into `--workdir` (default `runs/NAME`): the resolved
`config.json` first, then the task's logs, metrics, report and checkpoints, and
JAX's compilation cache (`xla_cache/`, see `jaxsim.xla_cache`; `--xla_cache`).
Re-running with the same workdir resumes.

On glibc 2.35 or later the entry point restarts itself once, as the same process,
with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (huge pages for XLA:CPU's large buffers;
faster steps, the same results) unless `GLIBC_TUNABLES` is already set: set it to
anything, even empty, to keep the allocator's defaults.

Multi-process launches (GPU nodes, TPU pod slices) set `JAXSIM_DISTRIBUTED=1`
(or pass `--distributed`), which makes this entry point call
`jax.distributed.initialize()` before anything touches a device; see
`jaxsim.parallel.initialize_distributed` for the variables it reads.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pathlib
import re
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.configs import common

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"


def available_configs() -> list[str]:
  """Names accepted by `--config=NAME` (the config modules, not their shared helpers)."""
  return sorted(
    p.stem
    for p in CONFIG_DIR.glob("*.py")
    if not p.stem.startswith("_") and p.stem != "common" and "def get_config" in p.read_text()
  )


def config_variants(name: str) -> tuple[str, ...]:
  """The variants (`:ARG` names) a config declares in its `VARIANTS`."""
  return tuple(getattr(importlib.import_module(f"experiments.configs.{name}"), "VARIANTS", ()))


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
_XLA_CACHE = flags.DEFINE_string(
  "xla_cache",
  None,
  "Directory of JAX's persistent compilation cache (default <workdir>/xla_cache; 'none' "
  "turns it off; $JAX_COMPILATION_CACHE_DIR wins). Compiled programs are reused when a "
  "run compiles the same program twice or resumes.",
)
_PROFILE = flags.DEFINE_bool(
  "profile",
  False,
  "Split the run's wall time into phases (compilation, model init, input pipeline, train "
  "steps, selection evaluation, checkpoints, data preparation, evaluation, report); print "
  "the table and write profile.json into the workdir (see jaxsim.profiling).",
)
_PRINT_CONFIG = flags.DEFINE_bool(
  "print_config", False, "Print the resolved config (every key and value) and exit."
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


def usage() -> str:
  """The `--help` text: the command, the configs with their variants, the main flags."""
  lines = [
    "usage: python -m experiments.run --config=NAME[:VARIANT[,VARIANT...]] "
    "[--config.KEY=VALUE ...] [--workdir=DIR] [--print_config]",
    "",
    "configs (variants combine in any order, e.g. face_fp:chimeric,runlocal):",
  ]
  for name in available_configs():
    variants = config_variants(name)
    lines.append(f"  {name:<18} variants: {', '.join(':' + v for v in variants) or 'none'}")
  lines += [
    "",
    "config keys: `--config=NAME[:VARIANTS] --print_config` prints every key with its value;",
    "  each config file (experiments/configs/NAME.py) documents them, and",
    "  experiments/configs/common.py lists their allowed ranges. Override any key with",
    "  --config.KEY=VALUE (e.g. --config.train.steps=100).",
    "",
    "flags:",
    "  --workdir=DIR      output directory (default runs/NAME); re-running resumes",
    "  --print_config     print the resolved config and exit",
    "  --distributed      call jax.distributed.initialize() first ($JAXSIM_DISTRIBUTED)",
    "  --verbosity=N      0: library INFO logging (default: warnings only); 1 or more:",
    "                     also the traceback of data errors",
    "  --helpfull         every absl flag",
  ]
  return "\n".join(lines)


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
  try:
    common.validate(config)
  except common.ConfigError as e:
    _exit_with(str(e), 2)
  if _PRINT_CONFIG.value:
    print(config.to_json_best_effort(indent=2, sort_keys=True))
    return
  from jaxsim import xla_cpu  # noqa: PLC0415 -- before JAX starts its backend

  xla_cpu.prefer_eigen_convolutions()
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
  from jaxsim import xla_cache  # noqa: PLC0415

  cache = _XLA_CACHE.value if _XLA_CACHE.value is not None else workdir / "xla_cache"
  xla_cache.enable(None if str(cache).lower() == "none" else cache)
  from jaxsim import report  # noqa: PLC0415
  from jaxsim import workdir as workdir_lib  # noqa: PLC0415
  from jaxsim.data.sources import folders  # noqa: PLC0415

  folders.clear_skipped_files()
  if _PROFILE.value:
    from jaxsim import profiling  # noqa: PLC0415

    profiling.instrument_library()
    profiling.enable()
  started = time.perf_counter()
  try:
    # Process 0 holds the workdir's lock: a second live run there is refused.
    with workdir_lib.lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
      metrics = task.run(config, workdir)
  except workdir_lib.WorkdirLockedError as e:
    _exit_with(str(e), 1)
  except (ValueError, FileNotFoundError) as e:
    # Bad input (a missing folder, an unreadable image, too few identities): one line.
    if logging.get_verbosity() >= 1:
      raise
    _exit_with(f"{e} (--verbosity=1 shows the traceback)", 1)
  if jax.process_index() == 0:
    # Added here rather than by each task: what the numbers were computed with, and the
    # files the data loaders left out.
    entries, skipped = {"environment": report.environment()}, folders.skipped_files()
    if skipped:
      entries["data_files"] = skipped
    report.add_to_report(workdir, entries, _skipped_sentence(skipped) if skipped else "")
    if _PROFILE.value:
      _write_profile(workdir, time.perf_counter() - started)
    headline = getattr(task, "HEADLINE", {})
    print(report.summary_table(metrics, headline(metrics) if callable(headline) else headline))
    print(f"report: {workdir / 'report.md'}  (all metrics: {workdir / 'metrics.json'})")


def _write_profile(workdir: pathlib.Path, seconds: float) -> None:
  """The phase table of this run: printed, and kept in workdir/profile.json."""
  import json  # noqa: PLC0415

  from jaxsim import profiling  # noqa: PLC0415

  rows = profiling.breakdown(seconds, rest="evaluation and other")
  record = {"wall_seconds": seconds, "phases": rows}
  (workdir / "profile.json").write_text(json.dumps(record, indent=2))
  print(f"profile of the task's run ({seconds:.1f} s wall; {workdir / 'profile.json'}):")
  print(profiling.table(rows))


def _skipped_sentence(skipped: dict) -> str:
  return (
    f"Left out while loading data: {skipped['num_unreadable']} unreadable image file(s) and "
    f"{skipped['num_non_image']} non-image file(s); metrics.json `data_files` names them."
  )


def _exit_with(message: str, status: int):
  print("error: " + " ".join(str(message).split()), file=sys.stderr)
  sys.exit(status)


def _unknown_key_message(error: Exception, argv: list[str]) -> str | None:
  """'unknown config key ...; did you mean ...?' for a misspelt `--config.KEY` override."""
  while isinstance(error, Exception) and error.args:  # AttributeError(KeyError(str))
    error = error.args[0]
  text = str(error)
  hint = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
  bad = re.match(r"""^['"]?([\w-]+)""", text)
  if hint is None and bad is None:
    return None
  bad_name = hint.group(2) if hint else bad.group(1)
  for item in argv:
    if not item.startswith("--config."):
      continue
    key = item[len("--config.") :].partition("=")[0]
    parts = key.split(".")
    if bad_name in parts:
      message = f"unknown config key {key!r}"
      if hint:
        fixed = ".".join(hint.group(1) if p == bad_name else p for p in parts)
        message += f"; did you mean {fixed!r}?"
      return message + " (--print_config lists every key)"
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with one-line errors for the mistakes a user makes."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # ml_collections: an override names no key
    message = _unknown_key_message(e, argv)
    if message is None:
      raise
    _exit_with(message, 2)
  except (flags.Error, ValueError) as e:  # a value of the wrong type, an unknown variant
    message = str(e)
    if "Traceback (most recent call last)" in message:  # get_config raised: its last line
      message = message.strip().splitlines()[-1]
    _exit_with(message, 2)


def _quiet_unless_asked(argv: list[str]) -> None:
  """Library INFO logging (Orbax writes hundreds of lines a run) only with --verbosity."""
  if not any(a.startswith(("--verbosity", "-v=", "--v=")) for a in argv[1:]):
    argv.append("--verbosity=-1")  # absl: -1 = WARNING


HUGE_PAGES = "glibc.malloc.hugetlb=1"


def _glibc_version() -> tuple[int, ...]:
  """(major, minor) of the C library if it is glibc, else () (musl, macOS, odd strings)."""
  try:
    name, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").split()
    return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else ()
  except (ValueError, OSError):
    return ()


def _restart_with_huge_pages() -> None:
  """Re-executes this same command (same process id) with `GLIBC_TUNABLES=HUGE_PAGES`
  unless `GLIBC_TUNABLES` is set (to anything, even empty: that opts out).

  glibc reads its tunables only at process start. With this one (glibc 2.35 or later),
  malloc asks for transparent huge pages, so XLA:CPU's large buffers, freed and mapped
  afresh every step, fault in 2 MB at a time instead of 4 KB: the Omniglot default's
  steps took 13% less time and its minor page faults fell tenfold, with identical
  figures (README, Performance). `launch.sh` sets the same.
  """
  if "GLIBC_TUNABLES" in os.environ or not sys.executable or _glibc_version() < (2, 35):
    return
  os.environ["GLIBC_TUNABLES"] = HUGE_PAGES
  sys.stdout.flush()
  os.execv(sys.executable, sys.orig_argv)


def cli() -> None:
  if any(a in ("--help", "-h", "-?", "--helpshort") for a in sys.argv[1:]):
    print(usage())
    sys.exit(0)
  _restart_with_huge_pages()
  _quiet_unless_asked(sys.argv)
  try:
    sys.argv = _rewrite_argv(sys.argv)
  except UnknownConfigError as e:
    _exit_with(str(e), 2)
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  cli()
