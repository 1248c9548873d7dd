"""ResNet3D-18 on Penn Action (the SGN paper's baseline, Sec. IV-B); ``:synthetic`` runs on a 2-core CPU.

  python -m vidrec.data.prepare penn_action --manual_dir /data/Penn_Action   # once
  python train.py --config configs/resnet3d_penn.py --workdir workdir/r3d_penn
  python train.py --config configs/resnet3d_penn.py:synthetic --workdir workdir/r3d_synth

Penn Action has one train/test split (15 classes, 2,326 sequences); the paper uses RGB frames only
(not the joint annotations). Everything else is the UCF101 baseline, except the schedule: x0.1 every
5,000 iterations. ``synthetic`` is the same CPU-sized setting as configs/resnet3d_ucf101.py:synthetic.
"""
from vidrec.config import base_config


def get_config(arg: str = ""):
  c = base_config()
  c.model.update(name="resnet3d", width=64, num_stages=4, blocks_per_stage=2, dropout=0.0)
  # Paper (Sec. IV-B): 16-frame non-overlapping clips, resize 128x171, crop 112; SGD lr 0.001,
  # momentum 0.9, weight decay 5e-4, x0.1 every 5,000 iterations (HMDB-51, Penn, ODAR), at most 50k.
  c.dataset.update(name="penn_action/default", train_split="train", eval_split="test")
  c.input.update(sampler="dense", clip_len=16, stride=1, num_test_clips=0, resize=(128, 171), crop=112)
  c.optimizer.update(lr=0.001, momentum=0.9, weight_decay=5e-4, schedule="step", decay_every=5_000)
  c.batch_size = 32
  c.num_train_steps = 50_000
  c.eval.aggregation = "majority_vote"
  if arg == "synthetic":
    synthetic(c)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r}; use '' or 'synthetic'.")
  return c


def synthetic(c) -> None:
  """CPU-sized: same model family (4 stages, 2 blocks each), width 8, 8x40x40 clips (as
  configs/resnet3d_ucf101.py:synthetic)."""
  c.model.update(width=8)
  c.dataset.update(name="synthetic_actions", train_split="train", eval_split="test")
  c.input.update(clip_len=8, stride=4, num_test_clips=3, resize=(46,), crop=40, scale_jitter=(40, 52))
  c.optimizer.update(lr=0.1, schedule="cosine", warmup_steps=100, weight_decay=1e-4)
  c.batch_size = 16
  c.num_train_steps = 1500
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.eval.aggregation = "mean_softmax"
