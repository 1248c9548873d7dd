"""What every entry point shares (train.py, eval.py, ``python -m vidrec.*``): quiet logs by default,
user errors as one paragraph with exit status 2, a preempted run's own exit status.

  if __name__ == "__main__":
    cli.run(main)            # absl commands

  @cli.returns_status        # argparse commands: main(argv=None) -> exit status
  def main(argv=None): ...

Real bugs keep their traceback. ``--verbosity`` (absl) brings TensorFlow's C++ logs and the library
warnings back. This module imports nothing heavy: ``vidrec/__init__`` calls ``quiet_tensorflow`` before
anything can import TensorFlow.
"""
from __future__ import annotations

import functools
import logging as py_logging
import os
import sys
import textwrap
from typing import Any, Callable, NoReturn, Sequence

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75        # sysexits.h EX_TEMPFAIL: "temporary failure; the user is invited to retry"
_NOISY_LIBRARIES = ("/tensorflow_datasets/", "/tensorflow/", "/orbax/")


def verbose_requested(argv: Sequence[str]) -> bool:
  return any(a == "-v" or a.startswith(("--verbosity", "-v=")) for a in argv)


def quiet_tensorflow(argv: Sequence[str] | None = None) -> None:
  """Silences TensorFlow's C++ start-up banners (oneDNN, absl::InitializeLog) unless ``--verbosity``
  is on the command line or ``TF_CPP_MIN_LOG_LEVEL`` is already set. Must run before TF is imported."""
  if not verbose_requested(sys.argv if argv is None else argv):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _QuietLibraries(py_logging.Filter):
  """Drops info/warning records of TensorFlow, TFDS and orbax (errors still pass)."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    return record.levelno >= py_logging.ERROR or not any(s in record.pathname for s in _NOISY_LIBRARIES)


def print_user_error(error: BaseException | str) -> None:
  """``error: <message>`` on stderr, the first line wrapped as a paragraph, later lines kept."""
  first, _, rest = str(error).partition("\n")
  text = textwrap.fill(f"error: {first}", width=100, break_on_hyphens=False, break_long_words=False)
  print(text + (f"\n{rest}" if rest else ""), file=sys.stderr, flush=True)


def exit_status(error: BaseException) -> int | None:
  """Prints a user error or a preemption and returns its exit status; None for anything else."""
  from vidrec.errors import UserError  # pylint: disable=g-import-not-at-top
  from vidrec.preemption import Preempted  # pylint: disable=g-import-not-at-top
  if isinstance(error, UserError):
    print_user_error(error)
    return EXIT_USER_ERROR
  if isinstance(error, Preempted):
    print(str(error), file=sys.stderr, flush=True)
    return EXIT_PREEMPTED
  return None


def returns_status(main: Callable[..., int | None]) -> Callable[..., int]:
  """For argparse commands, ``main(argv) -> status``: user errors and preemption become statuses."""

  @functools.wraps(main)
  def wrapper(*args, **kwargs) -> int:
    try:
      return main(*args, **kwargs) or 0
    except Exception as e:  # pylint: disable=broad-except
      status = exit_status(e)
      if status is None:
        raise
      return status
  return wrapper


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
  """``fn`` that exits with the status of a user error or a preemption (absl's ``main``)."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      status = exit_status(e)
      if status is None:
        raise
      sys.exit(status)
  return wrapper


def _parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with bad flags / config overrides reported like user errors (exit 2)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print_user_error(f"{e}\n(--helpfull lists every flag; --config.<key>=value must name an existing "
                     f"config key, see vidrec/config.py.)")
    sys.exit(EXIT_USER_ERROR)


def run(main: Callable[[list[str]], Any]) -> NoReturn:
  """``absl.app.run(main)`` for vidrec commands."""
  from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

  def main_quiet(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)   # progress lines and warnings; -v 0 for info
      logging.get_absl_handler().addFilter(_QuietLibraries())
    return main(argv)

  app.run(guarded(main_quiet), flags_parser=guarded(_parse_flags))
