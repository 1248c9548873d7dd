"""What every entry point shares (train.py, eval.py, ``python -m vidrec.*``): quiet logs by default,
user errors as one paragraph with exit status 2, a preempted run's own exit status.

  if __name__ == "__main__":
    cli.run(main)            # absl commands

  @cli.returns_status        # argparse commands: main(argv=None) -> exit status
  def main(argv=None): ...

Real bugs keep their traceback. ``--verbosity`` (absl) brings TensorFlow's C++ logs and the library
warnings back. ``vidrec/__init__`` calls ``quiet_tensorflow`` before anything else can import TensorFlow.
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
  """Imports TensorFlow with the C++ start-up banners it writes straight to file descriptor 2 (oneDNN,
  "All log messages before absl::InitializeLog()"; TF 2.21 prints them whatever TF_CPP_MIN_LOG_LEVEL
  says) sent to /dev/null, unless ``--verbosity`` is on the command line. Errors still propagate."""
  if verbose_requested(sys.argv if argv is None else argv) or "tensorflow" in sys.modules:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")    # TF's later C++ info/warning lines
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


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
  """absl flag parsing; a bad flag, config file or ``--config.<key>`` override is a user error (exit 2)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from vidrec.errors import UserError  # pylint: disable=g-import-not-at-top
  _check_config_file(argv)
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError) as e:
    cause = _root_cause(e)
    if isinstance(cause, UserError):                 # raised by a config file's get_config
      raise cause from None
    if isinstance(e, flags.Error):
      message = str(e).split("\nTraceback (most recent call last):")[0].rstrip(": \n")
      inner = _innermost_message(cause)
      detail = f" ({type(cause).__name__}: {inner})" if cause is not e and inner not in message else ""
      raise UserError(f"{message}{detail}. --helpfull lists every flag.") from None
    overrides = [a for a in argv if a.startswith("--config.")]
    raise UserError(f"Unknown config key {_innermost_message(e)} in {' '.join(overrides)}: every key "
                    f"and its default is in vidrec/config.py.") from None


def _check_config_file(argv: list[str]) -> None:
  """``--config PATH[:variant]`` must name a file (ml_collections would only fail at first use)."""
  from vidrec.errors import UserError  # pylint: disable=g-import-not-at-top
  for i, arg in enumerate(argv):
    value = arg.partition("=")[2] if arg.startswith("--config=") else (
        argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    if value is not None and not os.path.isfile(value.split(":")[0]):
      known = sorted(f for f in os.listdir("configs") if f.endswith(".py")) if os.path.isdir("configs") else []
      raise UserError(f"--config {value}: no such file {value.split(':')[0]!r}"
                      f"{'; configs/ holds ' + ', '.join(known) if known else ''}.")


def _root_cause(e: BaseException) -> BaseException:
  while (e.__cause__ or e.__context__) is not None:
    e = e.__cause__ or e.__context__
  return e


def _innermost_message(e: BaseException) -> str:
  """The message of an exception that wraps others as its argument (ml_collections does)."""
  m: object = e
  while isinstance(m, BaseException) and m.args:
    m = m.args[0]
  return " ".join(str(m).split())


def run(main: Callable[[list[str]], Any]) -> NoReturn:
  """``absl.app.run(main)`` for vidrec commands."""
  from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

  def main_quiet(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)   # progress lines and warnings; -v 0 for info
      logging.get_absl_handler().addFilter(_QuietLibraries())
      py_logging.getLogger("tensorflow").addFilter(_QuietLibraries())   # TF's own Python handler
    return main(argv)

  app.run(guarded(main_quiet), flags_parser=guarded(_parse_flags))
