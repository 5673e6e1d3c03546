"""Objects built once per key and handed out again: the jitted steps, optimizers and loss
functions that models built from equal configs share (`jaxsim.train.shared`,
`jaxsim.objectives.objective_from_config`)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Any


class BuiltOnce:
  """The last `size` objects built, by key: `get(key, build)` returns the object an
  earlier call built for an equal key, or `build()` (kept, the oldest dropped)."""

  def __init__(self, size: int):
    self.size = size
    self._items: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

  def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
    if key in self._items:
      self._items.move_to_end(key)
      return self._items[key]
    value = self._items[key] = build()
    if len(self._items) > self.size:
      self._items.popitem(last=False)
    return value
