"""JointLSTM (paper 001) on UCF101; ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare ucf101 --manual_dir /data/ucf101 --config split1      # once per split
  python train.py --config configs/joint_lstm_ucf101.py --workdir workdir/jl_ucf101               # late fusion
  python train.py --config configs/joint_lstm_ucf101.py:early,split2 --workdir workdir/jl_ucf101_e2
  python train.py --config configs/joint_lstm_ucf101.py:synthetic --workdir workdir/jl_synth

Variants (combine with commas): ``split1`` (default) / ``split2`` / ``split3``, ``late`` (default) /
``early``, ``synthetic``. Table 2 rows: --config.model.branches="('pool4',)"; Table 3 rows:
--config.model.conv_type=2d|none, --config.loss.lambda_att=0. Readings: docs/models/joint_lstm.md.
"""
from configs.recipes import joint_lstm


def get_config(arg: str = ""):
  return joint_lstm.get_config("ucf101", arg)
