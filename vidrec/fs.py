"""The one filesystem layer: every workdir file vidrec reads or writes goes through ``etils.epath``.

epath is what orbax itself uses, so ``gs://bucket/run`` (TPU VMs share no disk) and local paths work
alike: with TensorFlow installed epath reaches ``gs://`` through ``tf.io.gfile``, else through fsspec
(gcsfs). A workdir string reaches orbax unchanged; only local relative paths are made absolute.

Object stores cannot append, so :class:`AppendFile` rewrites the whole object on each flush there
(``metrics.jsonl`` and TensorBoard event files: small, written every ``log_every_steps``).
"""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from etils import epath

CHECKPOINT_DIR = "checkpoints"   # WORKDIR/CHECKPOINT_DIR holds a run's orbax checkpoints


def is_local(path: str | os.PathLike) -> bool:
  """True for paths on the local filesystem (no ``scheme://`` prefix)."""
  return "://" not in os.fspath(path)


def path(p: str | os.PathLike) -> epath.Path:
  """``p`` as an epath.Path: URIs (``gs://...``) unchanged, local paths made absolute."""
  p = os.fspath(p)
  try:
    return epath.Path(os.path.abspath(p) if is_local(p) else p)
  except KeyError:
    raise ValueError(f"{p}: unsupported file system {p.split('://')[0]}://; use a local path or gs:// "
                     f"(epath also reads s3://, az://, hf://).") from None


def makedirs(p: str | os.PathLike) -> epath.Path:
  d = path(p)
  d.mkdir(parents=True, exist_ok=True)
  return d


def save_npz(p: str | os.PathLike, **arrays: Any) -> None:
  """``np.savez`` to a local or remote path (written in one piece)."""
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  path(p).write_bytes(buf.getvalue())


def load_npz(p: str | os.PathLike) -> dict[str, np.ndarray]:
  with np.load(io.BytesIO(path(p).read_bytes())) as data:
    return dict(data)


class AppendFile:
  """A file opened for appending: a plain ``open(.., "a")`` locally; on an object store the existing
  contents are read once and the whole object is rewritten on ``flush``/``close``."""

  def __init__(self, p: str | os.PathLike, binary: bool = False):
    self.path = path(p)
    self._binary = binary
    self.path.parent.mkdir(parents=True, exist_ok=True)
    if is_local(self.path):
      self._local = open(self.path, "ab" if binary else "a")  # noqa: SIM115
    else:
      self._local = None
      self._data = self.path.read_bytes() if self.path.exists() else b""
      self._dirty = False

  def write(self, data: str | bytes) -> None:
    if self._local is not None:
      self._local.write(data)
    else:
      self._data += data if self._binary else data.encode()
      self._dirty = True

  def flush(self) -> None:
    if self._local is not None:
      self._local.flush()
    elif self._dirty:
      self.path.write_bytes(self._data)
      self._dirty = False

  def close(self) -> None:
    self.flush()
    if self._local is not None:
      self._local.close()


class _TensorBoardWriterFactory:
  """tensorboardX's hook for ``scheme://`` event files, routed through :class:`AppendFile`."""

  def open(self, p: str) -> AppendFile:
    return AppendFile(p, binary=True)

  def directory_check(self, p: str) -> None:
    makedirs(p)


def tensorboard_writer(logdir: str | os.PathLike):
  """A ``tensorboardX.SummaryWriter`` whose event file goes through this layer (local or remote)."""
  import tensorboardX  # pylint: disable=g-import-not-at-top
  from tensorboardX import record_writer  # pylint: disable=g-import-not-at-top
  logdir = os.fspath(path(logdir))
  if not is_local(logdir):
    record_writer.register_writer_factory(logdir.split(":")[0], _TensorBoardWriterFactory())
  return tensorboardX.SummaryWriter(logdir)
