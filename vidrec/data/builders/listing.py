"""Finding things in a ``manual_dir``: which files are videos / frames, split and label lists, paths
whose case differs from the lists'."""
from __future__ import annotations

import os
from typing import Sequence

from etils import epath

VIDEO_EXTENSIONS = frozenset({
    ".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv",
    ".3gp", ".ogv", ".ts", ".mts", ".vob", ".asf",
})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def first_existing(root: epath.Path, candidates: Sequence[str]) -> epath.Path | None:
  """The first ``root / c`` that exists, else None."""
  for c in candidates:
    p = root / c if c else root
    if p.exists():
      return p
  return None


def read_lines(path: epath.Path) -> list[str]:
  """Non-empty, stripped lines of a text file (tolerates BOMs and CRLF)."""
  text = path.read_bytes().decode("utf-8-sig", errors="replace")
  return [line.strip() for line in text.splitlines() if line.strip()]


def is_hidden(path: epath.Path) -> bool:
  return path.name.startswith(".")


class CaseInsensitiveFinder:
  """Finds ``root/rel`` on disk, falling back to a case-insensitive match per path part
  (UCF101's lists say ``HandstandPushups/v_HandStandPushups_...`` for instance)."""

  def __init__(self, root: epath.Path):
    self.root = root
    self._listings: dict[str, dict[str, epath.Path]] = {}

  def _listing(self, directory: epath.Path) -> dict[str, epath.Path]:
    key = os.fspath(directory)
    if key not in self._listings:
      try:
        self._listings[key] = {p.name.lower(): p for p in directory.iterdir()}
      except OSError:
        self._listings[key] = {}
    return self._listings[key]

  def find(self, rel: str) -> epath.Path | None:
    exact = self.root / rel
    if exact.exists():
      return exact
    current = self.root
    for part in [p for p in rel.replace("\\", "/").split("/") if p]:
      nxt = self._listing(current).get(part.lower())
      if nxt is None:
        return None
      current = nxt
    return current
