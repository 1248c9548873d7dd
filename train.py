"""Train a vidrec model: python train.py --config configs/<model>_<dataset>.py[:variant] --workdir DIR.

Re-running the same command resumes from the latest checkpoint in DIR/checkpoints. Exit status: 0 done,
2 a user error (the message says what to fix), 75 preempted (SIGTERM/SIGINT: checkpointed; re-run to
resume), anything else a bug. ``--dry_run`` builds everything but the compiled step and prints what the
run would do (``vidrec.dry_run``): exit 0 when it would start, 2 when it would not.
"""
import sys

from absl import flags
from ml_collections import config_flags

from vidrec import cli, parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/u2s_sthv2.py:synthetic.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and reports go.")
_EVAL = flags.DEFINE_bool("eval", True, "Run eval.py's evaluation after training.")
_ALLOW_CHANGE = flags.DEFINE_bool("allow_config_change", False,
                                  "Resume even if the config differs from WORKDIR/config.json in keys "
                                  "that change the training maths.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the resolved config's changes, weights, dataset, "
                              "parameters, init table and stages; train nothing.")
parallel.define_flags()
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  parallel.initialize()
  if _DRY_RUN.value:
    from vidrec import dry_run  # pylint: disable=g-import-not-at-top
    sys.exit(dry_run.run(_CONFIG.value, _WORKDIR.value))
  from vidrec import evaluate, procedures  # pylint: disable=g-import-not-at-top
  procedures.train(_CONFIG.value, _WORKDIR.value, _ALLOW_CHANGE.value)
  if _EVAL.value:
    evaluate.evaluate(procedures.eval_config(_CONFIG.value, _WORKDIR.value), _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
