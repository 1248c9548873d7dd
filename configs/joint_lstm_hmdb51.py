"""JointLSTM (paper 001) on HMDB51; ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare hmdb51 --manual_dir /data/hmdb51 --config split1      # once per split
  python train.py --config configs/joint_lstm_hmdb51.py --workdir workdir/jl_hmdb51               # late fusion
  python train.py --config configs/joint_lstm_hmdb51.py:early,split2 --workdir workdir/jl_hmdb51_e2
  python train.py --config configs/joint_lstm_hmdb51.py:synthetic --workdir workdir/jl_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``late`` (default) /
``early``, ``synthetic``. Table 2 rows: --config.model.branches="('pool4',)"; Table 3 rows:
--config.model.conv_type=2d|none, --config.loss.lambda_att=0. Readings: docs/models/joint_lstm.md.
"""
from configs.recipes import joint_lstm


def get_config(arg: str = ""):
  return joint_lstm.get_config("hmdb51", arg)
