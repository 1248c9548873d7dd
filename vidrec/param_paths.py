"""Variables by name: flat "/"-joined paths ("params/fc/kernel") and fnmatch globs over them.

One naming scheme for everything that selects variables by name: ``init_from``'s ``init_skip`` and the
optimizer's ``frozen`` subtrees.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Mapping

import flax


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
  """{"params": {"fc": {"kernel": x}}} -> {"params/fc/kernel": x}."""
  return {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(dict(tree)).items()}


def unflatten(flat: Mapping[str, Any]) -> dict:
  """Inverse of :func:`flatten`."""
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def parse_patterns(spec: str | tuple | list | None) -> tuple[str, ...]:
  """"fc/*,fc8/*" (or a list) -> ("fc/*", "fc8/*")."""
  if not spec:
    return ()
  items = spec.split(",") if isinstance(spec, str) else list(spec)
  return tuple(p.strip() for p in items if p.strip())


def matches(name: str, patterns: tuple[str, ...]) -> bool:
  """Whether the path ``name`` matches any glob (case-sensitive; ``*`` crosses "/")."""
  return any(fnmatch.fnmatchcase(name, p) for p in patterns)
