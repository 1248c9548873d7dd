"""One training process for the fault-injection tests (tests/test_reliability_processes.py).

usage: python tests/fault_worker.py WORKDIR DATA_DIR STEPS DELAY [PORT NUM_PROCESSES PROCESS_ID]

Trains conftest's tiny config for STEPS steps (checkpoints only at the end or on a preemption), sleeping
DELAY seconds before each step so that a test can signal it mid-run, and exits as train.py does
(``cli.returns_status``: 75 when preempted).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(workdir: str, data_dir: str, steps: str, delay: str, *multiprocess: str) -> None:
  from vidrec import parallel
  if multiprocess:
    port, num_processes, process_id = multiprocess
    parallel.initialize(f"127.0.0.1:{port}", int(num_processes), int(process_id))
  from conftest import tiny_config
  from vidrec import trainer
  cfg = tiny_config(data_dir)
  cfg.num_train_steps, cfg.checkpoint_every_steps = int(steps), 1000
  to_global = parallel.to_global

  def slow_to_global(batch, mesh):
    time.sleep(float(delay))
    return to_global(batch, mesh)

  parallel.to_global = slow_to_global
  trainer.train(cfg, workdir)


if __name__ == "__main__":
  from vidrec import cli
  sys.exit(cli.returns_status(main)(*sys.argv[1:]))
