"""The workdir lock: a live holder refuses a second run; a stale lock is taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from jaxsim import workdir


def test_lock_is_released_after_the_run(tmp_path):
  with workdir.lock(tmp_path) as path:
    held = json.loads(path.read_text())
    assert held["pid"] == os.getpid()
  assert not (tmp_path / workdir.LOCK_NAME).exists()


def test_a_live_lock_refuses_and_names_the_holder(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    (tmp_path / workdir.LOCK_NAME).write_text(
      json.dumps({"pid": holder.pid, "host": socket.gethostname(), "command": "other run"})
    )
    with pytest.raises(workdir.WorkdirLockedError, match=f"process {holder.pid}.*other run"):
      with workdir.lock(tmp_path):
        pass
    assert (tmp_path / workdir.LOCK_NAME).exists()  # the holder's lock stays
  finally:
    holder.kill()
    holder.wait()


def test_a_stale_lock_is_taken_over(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()  # a run that was killed: its pid no longer exists
  (tmp_path / workdir.LOCK_NAME).write_text(
    json.dumps({"pid": dead.pid, "host": socket.gethostname()})
  )
  with workdir.lock(tmp_path) as path:
    assert json.loads(path.read_text())["pid"] == os.getpid()
  (tmp_path / workdir.LOCK_NAME).write_text("{half-writ")  # a crash mid-write
  with workdir.lock(tmp_path):
    pass
