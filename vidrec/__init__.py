"""vidrec: video action recognition in JAX/Flax (SGN, joint-LSTM, ATW, U2S, FstCN)."""

__version__ = "0.1.0"
