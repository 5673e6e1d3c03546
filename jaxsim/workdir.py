"""One live run per workdir: a lock file naming the process that holds it.

`lock(workdir)` creates `workdir/.lock` atomically with the holder's pid, host and
command line. A second run on the same workdir while the holder lives is refused with
a message that names it; a lock whose process is gone (a run killed by SIGKILL or a
crash) is stale and is taken over, so a resume is never blocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Iterator

LOCK_NAME = ".lock"


class WorkdirLockedError(RuntimeError):
  """Another live process is running in this workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  return True


def _holder(path: pathlib.Path) -> dict | None:
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def _is_stale(holder: dict | None) -> bool:
  if holder is None:  # unreadable or half-written: only a crash leaves that behind
    return True
  if holder.get("host") != socket.gethostname():
    return False  # cannot check another machine's processes: assume it is live
  return not _alive(int(holder.get("pid", -1)))


@contextlib.contextmanager
def lock(workdir: str | pathlib.Path) -> Iterator[pathlib.Path]:
  """Holds `workdir/.lock` for the duration of the block (see the module docstring).

  Raises:
    WorkdirLockedError: a live process holds the lock.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK_NAME
  me = {
    "pid": os.getpid(),
    "host": socket.gethostname(),
    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    "command": " ".join(sys.argv),
  }
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _holder(path)
      if not _is_stale(holder):
        raise WorkdirLockedError(
          f"workdir {workdir} is in use by process {holder['pid']} on {holder['host']} "
          f"(started {holder.get('started', '?')}: {holder.get('command', '?')}); wait for "
          f"it to finish or pass another --workdir"
        ) from None
      path.unlink(missing_ok=True)  # stale: its process is gone
      continue
    with os.fdopen(fd, "w") as f:
      json.dump(me, f)
    break
  else:
    raise WorkdirLockedError(f"could not take the lock {path}; another run is starting there")
  try:
    yield path
  finally:
    if (_holder(path) or {}).get("pid") == me["pid"]:
      path.unlink(missing_ok=True)
