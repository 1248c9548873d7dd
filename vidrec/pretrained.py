"""The weights each paper's recipe starts from, and the refusal to start a real-data run without them.

A real-data recipe declares ``config.pretrained = NAME`` (a :data:`SOURCES` entry: the file a user
downloads, the ``vidrec.convert`` arch that converts it, how it differs from the paper's own weights) and
sets ``config.init_from`` to the directory that conversion writes (``pretrained/<NAME>``, relative to
the working directory), with the ``init_prefix`` / ``init_adapt`` its model needs. :func:`resolve`, run
by ``vidrec.procedures.train`` and ``train.py --dry_run`` before anything is built:

* weights present at ``init_from`` (a converted directory or a vidrec run): the run starts from them;
* missing: ``UserError`` (exit 2), one paragraph naming the file, the convert command and the flags;
* ``--config.from_scratch=True``: random weights on purpose, one warning line, ``init_from`` cleared
  (``run.json`` records it, ``vidrec.run_record``).

Synthetic variants declare nothing and train from scratch silently. docs/pretrained.md gives, per
paper, the command sequence from the downloaded file to the paper's run.
"""
from __future__ import annotations

import dataclasses

import ml_collections

from vidrec import config as config_lib
from vidrec import fs, init_from
from vidrec.errors import UserError
from vidrec.registry import Registry

TORCHVISION = "https://download.pytorch.org/models/"


@dataclasses.dataclass(frozen=True)
class Source:
  """A pretrained network a user can download: ``file`` from ``url``, converted by ``vidrec.convert``
  ``arch``; ``what`` says what it is and how it differs from what the paper used; ``mean`` / ``std``: the
  input normalisation (0-255 RGB) it was trained with (``config.input.mean/std``)."""
  arch: str
  file: str
  url: str
  what: str
  mean: tuple[float, float, float] = config_lib.IMAGENET_MEAN
  std: tuple[float, float, float] = config_lib.IMAGENET_STD

  def convert_command(self, out: str) -> str:
    return f"python -m vidrec.convert torchvision --arch {self.arch} --checkpoint {self.file} --out {out}"


SOURCES: Registry[Source] = Registry("pretrained")
SOURCES.add("r3d_18_kinetics400", Source(
    "r3d_18", "r3d_18-b3b3357e.pth", TORCHVISION + "r3d_18-b3b3357e.pth",
    "torchvision's Kinetics-400 ResNet3D-18 (R3D_18_Weights.KINETICS400_V1); SGN pre-trained on "
    "Sports-1M, for which no ResNet3D-18 checkpoint is public",
    mean=(110.2, 100.64, 95.99), std=(58.15, 56.47, 55.33)))      # torchvision's VideoClassification preset
SOURCES.add("vgg16_imagenet", Source(
    "vgg16", "vgg16-397923af.pth", TORCHVISION + "vgg16-397923af.pth",
    "torchvision's ImageNet VGG16 (VGG16_Weights.IMAGENET1K_V1); JointLSTM used Caffe's VGG16 "
    "fine-tuned on Sports-1M, which is not public"))
SOURCES.add("resnet18_imagenet", Source(
    "resnet18", "resnet18-f37072fd.pth", TORCHVISION + "resnet18-f37072fd.pth",
    "torchvision's ImageNet ResNet-18 (ResNet18_Weights.IMAGENET1K_V1), the ImageNet-pretrained frame "
    "stream of SGN + Frame"))
SOURCES.add("resnet50_imagenet", Source(
    "resnet50", "resnet50-0676ba61.pth", TORCHVISION + "resnet50-0676ba61.pth",
    "torchvision's ImageNet ResNet-50 (ResNet50_Weights.IMAGENET1K_V1), the ResNet ATW chose over "
    "BN-Inception (Sec. 4); flow streams get TSN's cross-modality average of its first kernel"))
SOURCES.add("resnet50_imagenet_u2s", Source(
    "u2s_resnet50", "resnet50-0676ba61.pth", TORCHVISION + "resnet50-0676ba61.pth",
    "torchvision's ImageNet ResNet-50 in U2S's post-activation layout, groups 2-3 into both branches "
    "and I3D-inflated into the Res3D; U2S started from Kinetics weights of its own network, not public"))
SOURCES.add("tsm_resnet50_kinetics400", Source(
    "tsm_resnet50", "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
    "https://hanlab18.mit.edu/projects/tsm/models/TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
    "TSM's Kinetics-400 ResNet-50 (Lin et al. 2019, mit-han-lab/temporal-shift-module: 8 segments, 1/8 of "
    "the channels shifted each way in every block's residual branch, RGB with ImageNet mean/std) in both "
    "branches; the paper names only 'pretrained networks on Kinetics', this is TSM8F's public one"))
SOURCES.add("vggm_imagenet", Source(
    "vggm", "vggm-786f2434.pth", "http://data.lip6.fr/cadene/pretrainedmodels/vggm-786f2434.pth",
    "ImageNet VGG-M (CNN-M, Chatfield et al. 2014) as ported to PyTorch by pretrainedmodels, inputs "
    "0-255 BGR minus the mean; FstCN's auxiliary net is CNN-M-2048, whose fc7 has 2048 units, so fc7 "
    "starts fresh", std=(1.0, 1.0, 1.0)))


def declare(config: ml_collections.ConfigDict, name: str, prefix: str = "", adapt: str = "") -> None:
  """A recipe's declaration: the paper starts from ``name``; ``init_from`` = where its conversion is
  expected, loaded under ``prefix`` with the shape adapter ``adapt``, inputs normalised as it was trained."""
  source = SOURCES.get(name)
  config.update(pretrained=name, init_from=default_dir(name), init_prefix=prefix, init_adapt=adapt)
  config.input.update(mean=source.mean, std=source.std)


def clear(config: ml_collections.ConfigDict) -> None:
  """No pretrained weights (the synthetic settings, which train from scratch)."""
  config.update(pretrained="", init_from="", init_prefix="", init_adapt="")
  config.input.update(mean=config_lib.IMAGENET_MEAN, std=config_lib.IMAGENET_STD)


def default_dir(name: str) -> str:
  """Where the recipes expect the conversion of ``name``: ``pretrained/<name>`` under the working dir."""
  return f"pretrained/{name}"


def has_weights(directory: str) -> bool:
  """True when ``directory`` is a converted directory or a vidrec run with checkpoints."""
  root = fs.path(directory)
  return (root / init_from.VARIABLES_FILE).exists() or (root / fs.CHECKPOINT_DIR).exists()


def refusal(config: ml_collections.ConfigDict) -> str | None:
  """None when the run may start with its weights; else the paragraph that says how to get them."""
  name = config.get("pretrained", "")
  if not name or config.get("from_scratch", False):
    return None
  directory = config.init_from
  if directory and has_weights(directory):
    return None
  source = SOURCES.get(name)
  out = directory or default_dir(name)
  return (f"This recipe starts from pretrained weights ({source.what}) and there are none at "
          f"init_from={directory!r}. Download {source.file} ({source.url}), convert it with "
          f"`{source.convert_command(out)}`, and run again (or point --config.init_from at another converted "
          f"directory or a vidrec run); to train from random weights on purpose, pass "
          f"--config.from_scratch=True (results will not be the paper's).")


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config a run starts with: unchanged when its weights are there, without ``init_from`` under
  ``from_scratch`` (one warning line); raises ``UserError`` (exit 2) when the declared weights are missing
  or partial BN would freeze fresh BatchNorm statistics, and an unknown ``pretrained`` name."""
  if config.get("pretrained", ""):
    SOURCES.get(config.pretrained)
  problem = refusal(config)
  if problem:
    raise UserError(problem)
  if config.get("from_scratch", False):
    if config.get("pretrained", ""):
      print(f"warning: --config.from_scratch=True: training from random weights where the paper starts "
            f"from {config.pretrained} ({SOURCES.get(config.pretrained).file}); recorded in run.json.",
            flush=True)
    config = config_lib.with_overrides(config, {"init_from": ""})
  if config.model.get("partial_bn", False) and not config.init_from:
    raise UserError("model.partial_bn keeps every BatchNorm but the first at its running statistics, which "
                    "must come from pretrained weights, and this run has none (init_from is empty): give "
                    "--config.init_from, or turn partial BN off with --config.model.partial_bn=False "
                    "--config.optimizer.frozen=''.")
  return config
