"""vidrec: video action recognition in JAX/Flax (SGN, joint-LSTM, ATW, U2S, FstCN)."""

__version__ = "0.1.0"

from vidrec import cli as _cli

_cli.quiet_tensorflow()   # imports TensorFlow without its C++ banners (unless --verbosity)
