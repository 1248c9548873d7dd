"""U2S (paper 003) on Something-Something v2: the project's headline config, the paper's recipe.

  python -m vidrec.data.prepare ssv2 --manual_dir /data/ssv2 --short_side 256   # once
  python train.py --config configs/u2s_sthv2.py --workdir workdir/u2s_sthv2
  python train.py --config configs/u2s_sthv2.py:synthetic --workdir workdir/u2s_synthetic   # 2-core CPU

The paper's recipe (Sec. IV-B "Frame Sampling", "Training", "Testing"): top-heavy pre-activation
ResNet-50, 18 frames (one per equal segment at the same random position in every segment in training,
the centres at test: sampler ``segments_shared``), short side 240
and a 224 x 224 crop at the same place in every frame of the clip, no flipping (mirror-sensitive
classes); three stages (``procedure = "u2s_stages"``, docs/models/u2s.md): UN, then the CSM from the
trained UN over the training set, then CSN + MN with the UN frozen, then everything jointly. SGD
momentum 0.9, weight decay 1e-4, batch 20, lr 1e-3 for stages 1 and 2 with x0.1 after 7 and 12 epochs,
1e-4 for the joint stage; lambda = 0.5; N by the top-N rule at 85% on the validation split (held out
from training; docs/models/u2s.md); test: the 5 crops of TSN's 10 [5] without their flips (the paper
applies no flipping to SSv2's mirror-sensitive classes) at the segment centres, universal + bridge +
specific scores averaged (Table I).
The paper does not give the length of each stage: 15 epochs for stages 1-2 (3 after the last decay)
and 5 for the joint stage are our choice. It starts from Kinetics-pretrained Res2D/Res3D weights of
its own (not public): the recipe starts from torchvision's ImageNet ResNet-50 instead, converted into
U2S's post-activation layout (``model.preact=False``) and I3D-inflated into the Res3D groups of both
branches (docs/pretrained.md); it refuses to start without them (``--config.from_scratch=True``
overrides).

Variants (combine with commas): ``synthetic`` (CPU-sized, built-in ``synthetic_actions``), ``ablation``
(the synthetic setting, shorter, for the Table III ablations in docs/experiments.md), ``hard`` (the
synthetic setting on ``synthetic_actions/hard``, every stage twice as long, lr 0.02), ``online`` (one
joint run with EMA statistics and N = 5 instead of the stages), ``tsm`` (Table V: TSM's ResNet-50 and
its SSv2 recipe, Lin et al. 2019: 8 segments, SGD lr 0.01 for a batch of 64, weight decay 5e-4, 50
epochs with x0.1 at 20 and 40, TSN segments, short side 256 with jitter in [224, 340], dropout 0.5,
one centre view; it starts from TSM's Kinetics-400 ResNet-50 release, ``tsm_resnet50_kinetics400``, in
both branches; the paper does not say how it staged U2S on TSM, so ``tsm`` runs TSM's single schedule
online). Table
III switches: --config.model.variant= u2s | simple | soft_csm | no_mn | non_local | oracle.
"""
from configs.recipes import common, u2s
from vidrec import pretrained
from vidrec.config import base_config

TRAIN_VIDEOS = 168_913
EPOCH = -(-TRAIN_VIDEOS // 20)        # 8,446 steps of 20 videos
TSM_EPOCH = 2640                      # 168,913 / 64


def get_config(arg: str = ""):
  options = common.parse_variant(arg, ("synthetic", "ablation", "online", "tsm", "hard"))
  c = base_config()
  u2s.u2s_model(c, csm_warmup_steps=2 * EPOCH)
  c.dataset.update(name="ssv2/default_s256", train_split="train", eval_split="validation")
  c.input.update(sampler="segments_shared", num_segments=18, frames_per_segment=1, resize=(240,),
                 scale_jitter=(0, 0), crop=224, flip=False, test_spatial="five", test_flip=False)
  c.optimizer.update(lr=1e-3, momentum=0.9, weight_decay=1e-4, schedule="step",
                     decay_steps=(7 * EPOCH, 12 * EPOCH), grad_clip_norm=0.0)
  c.stages.update(steps=(15 * EPOCH, 15 * EPOCH, 5 * EPOCH), joint_lr=1e-4)
  c.batch_size = 20
  c.num_train_steps = 15 * EPOCH        # the online schedule's single run
  c.checkpoint_every_steps = 2000
  c.log_every_steps = 100
  c.eval.update(aggregation="mean_softmax", batch_size=20)
  if "tsm" in options:
    tsm(c)
  if "online" in options or "tsm" in options:
    u2s.online(c)
  if options & {"synthetic", "ablation", "hard"}:
    u2s.synthetic_segments(c, ablation="ablation" in options)
  else:   # "The Res2D and Res3D weights are initialized with pretrained networks" (Sec. IV-B)
    if "tsm" in options:   # TSM's own Kinetics ResNet-50, in the tsm base's layout: nothing to inflate
      pretrained.declare(c, "tsm_resnet50_kinetics400")
    else:                  # no public Kinetics Res3D: ImageNet's 2D groups, inflated (docs/models/u2s.md)
      pretrained.declare(c, "resnet50_imagenet_u2s", adapt="i3d_inflate")
    c.model.preact = False              # the layout of every public ResNet-50 (docs/pretrained.md)
  if "hard" in options:
    common.hard(c)
    u2s.hard_lr(c)
  return c


def tsm(c) -> None:
  """TSM's SSv2 recipe on TSM's ResNet-50 (Table V's TSM8F + U2S)."""
  c.model.update(base="tsm", dropout_rate=0.5, csm_warmup_steps=2 * TSM_EPOCH)
  c.input.update(sampler="segments", num_segments=8, resize=(256,), scale_jitter=(224, 340),
                 test_spatial="center", test_flip=False)
  c.optimizer.update(lr=0.01, weight_decay=5e-4, decay_steps=(20 * TSM_EPOCH, 40 * TSM_EPOCH),
                     grad_clip_norm=20.0)
  c.batch_size = 64
  c.num_train_steps = 50 * TSM_EPOCH
  c.eval.batch_size = 64
