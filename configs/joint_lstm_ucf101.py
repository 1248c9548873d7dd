"""JointLSTM (paper 001) on UCF101: ``configs/recipes/joint_lstm.py`` with ``ucf101/<split>``.

  python -m vidrec.data.prepare ucf101 --manual_dir /data/ucf101 --config split1      # once per split
  python train.py --config configs/joint_lstm_ucf101.py:early,split2 --workdir workdir/jl_ucf101_e2

Variants, Table 2-3 rows and the ``:synthetic`` CPU setting: the recipe's docstring.
"""
from configs.recipes import joint_lstm


def get_config(arg: str = ""):
  return joint_lstm.get_config("ucf101", arg)
