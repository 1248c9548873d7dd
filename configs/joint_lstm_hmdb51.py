"""JointLSTM (paper 001) on HMDB51: ``configs/recipes/joint_lstm.py`` with ``hmdb51/<split>``.

  python -m vidrec.data.prepare hmdb51 --manual_dir /data/hmdb51 --config split1      # once per split
  python train.py --config configs/joint_lstm_hmdb51.py:early,split2 --workdir workdir/jl_hmdb51_e2

Variants, Table 2-3 rows and the ``:synthetic`` CPU setting: the recipe's docstring.
"""
from configs.recipes import joint_lstm


def get_config(arg: str = ""):
  return joint_lstm.get_config("hmdb51", arg)
