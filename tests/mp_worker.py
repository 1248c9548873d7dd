"""One process of a multi-process run on 127.0.0.1 (used by test_multiprocess.py).

usage: python tests/mp_worker.py PORT NUM_PROCESSES PROCESS_ID WORKDIR DATA_DIR
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(port: str, num_processes: str, process_id: str, workdir: str, data_dir: str) -> None:
  from vidrec import parallel
  parallel.initialize(f"127.0.0.1:{port}", int(num_processes), int(process_id))
  from conftest import tiny_config
  from vidrec import evaluate, trainer
  cfg = tiny_config(data_dir)
  cfg.num_train_steps = 4
  trainer.train(cfg, workdir)
  evaluate.evaluate(cfg, workdir)


if __name__ == "__main__":
  main(*sys.argv[1:])
