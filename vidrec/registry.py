"""A tiny name -> object registry (big_vision style: look things up by name, no if-chains)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar


from vidrec.errors import UnknownNameError
T = TypeVar("T")


class Registry(Generic[T]):
  """Maps names to objects; unknown names raise an error that lists the known ones."""

  def __init__(self, kind: str):
    self.kind = kind
    self._items: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def deco(obj: T) -> T:
      if name in self._items:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._items[name] = obj
      return obj
    return deco

  def add(self, name: str, obj: T) -> T:
    return self.register(name)(obj)

  def get(self, name: str) -> T:
    if name not in self._items:
      raise UnknownNameError(
          f"Unknown {self.kind} {name!r}. Known {self.kind}s: {sorted(self._items)}. "
          f"Fix the name in the config (e.g. --config.{self.kind.replace(' ', '_')}=...).")
    return self._items[name]

  def __contains__(self, name: str) -> bool:
    return name in self._items

  def names(self) -> list[str]:
    return sorted(self._items)
