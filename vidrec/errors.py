"""The one error type for "the user must fix something" (a bad config value, an unknown name, missing
data, a shape mismatch, a resumed run whose config changed, ...).

Entry points (``vidrec.cli``) print it as one paragraph without a traceback and exit with status 2;
every other exception is a bug and keeps its traceback. It subclasses ``ValueError`` so code and tests
that expect the built-in types keep working; ``UnknownNameError`` is also a ``KeyError`` (registries).
"""
from __future__ import annotations


class UserError(ValueError):
  """Something the user must fix; the message says what and how."""

  def __str__(self) -> str:   # KeyError's repr-quoting would otherwise wrap the message in quotes
    return str(self.args[0]) if self.args else ""


class UnknownNameError(UserError, KeyError):
  """A name (model, dataset, loss, ...) that is not in its registry."""


class MissingDataError(UserError, FileNotFoundError):
  """A dataset, checkpoint or file the command needs does not exist where it was looked for."""
