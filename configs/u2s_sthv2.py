"""U2S (paper 003) on Something-Something v2: the project's headline config.

  python -m vidrec.data.prepare ssv2 --manual_dir /data/ssv2 --short_side 256   # once
  python train.py --config configs/u2s_sthv2.py --workdir workdir/u2s_sthv2
  python train.py --config configs/u2s_sthv2.py:synthetic --workdir workdir/u2s_synthetic   # 2-core CPU

Variants: ``synthetic`` (CPU-sized, built-in ``synthetic_actions``), ``ablation`` (the synthetic setting,
shorter, for the Table III ablations in docs/experiments.md). Table III switches: --config.model.variant=
u2s | simple | soft_csm | no_mn | non_local | oracle | one_pass (one_pass also wants --config.loss.name=u2s,
which then has only the UN term). Table V: --config.model.base=tsm.

The paper gives no training schedule for SSv2; we follow TSM's SSv2 recipe (Lin et al. 2019): 8 segments,
SGD lr 0.01 for a batch of 64, momentum 0.9, weight decay 5e-4, 50 epochs with x0.1 at epochs 20 and
40 (168,913 training videos / 64 = 2,640 steps per epoch), 224 crops from 256-short-side frames with
TSM's multi-scale cropping approximated by short-side jitter in [224, 340]; no horizontal flip (SSv2's
labels depend on direction; --config.input.flip=True uses the SSv2 flip label map). Test: one clip of
8 segment centres, centre crop (TSM's single-view protocol); --config.input.test_spatial=three for 3 crops.
"""
from configs.recipes import u2s
from vidrec.config import base_config

STEPS_PER_EPOCH = 2640


def get_config(arg: str = ""):
  c = base_config()
  u2s.u2s_model(c, csm_warmup_steps=2 * STEPS_PER_EPOCH)
  c.dataset.update(name="ssv2/default_s256", train_split="train", eval_split="validation")
  c.input.update(sampler="segments", num_segments=8, frames_per_segment=1, resize=(256,),
                 scale_jitter=(224, 340), crop=224, flip=False, test_spatial="center")
  c.optimizer.update(lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
                     decay_steps=(20 * STEPS_PER_EPOCH, 40 * STEPS_PER_EPOCH), grad_clip_norm=20.0)
  c.batch_size = 64
  c.num_train_steps = 50 * STEPS_PER_EPOCH
  c.checkpoint_every_steps = 2000
  c.log_every_steps = 100
  c.eval.update(aggregation="mean_softmax", batch_size=64)
  if arg in ("synthetic", "ablation"):
    u2s.synthetic_segments(c, ablation=arg == "ablation")
  elif arg:
    raise ValueError(f"Unknown variant {arg!r}; use '', 'synthetic' or 'ablation'.")
  return c
