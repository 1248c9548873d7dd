"""JointLSTM's loss terms and their gradients at step 0 (paper 001, J8 and J10): does lambda * R drown
the cross-entropy?

  python -m vidrec.tools.joint_lstm_terms                             # 384 px, 30 frames, batch 1 (paper)
  python -m vidrec.tools.joint_lstm_terms --size 192 --frames 16      # quicker
  python -m vidrec.tools.joint_lstm_terms --checkpoint vgg16-397923af.pth   # real ImageNet VGG16

The pre-conv net is torchvision's VGG16 converted through ``vidrec.convert`` (``--checkpoint``; without
one, a random-weight ``torchvision.models.vgg16()`` saved and converted the same way: torchvision's own
initialisation, not ImageNet features). The rest is the paper recipe's JointLSTM
(``configs/recipes/joint_lstm.py``: taps pool4 and conv5_3, 256-channel 3D convnets, three 1024-unit
LSTM layers) at its initialisation, on ``synthetic_actions`` videos resized to ``--size``. For one
training-mode batch it prints every term of the ``joint_lstm`` loss (``lstm``: J8's cross-entropy
averaged over steps; ``deep_sup_<b>``: J10's cross-entropy; ``att_reg_<b>``: lambda * J10's R, summed
over steps and positions), the global norm of each term's gradient, the module groups it reaches, and
the cross-entropy's share of the summed gradient, and the factor each module's step is scaled by under
the recipe's ``optimizer.grad_clip_norm`` with one global norm (``grad_clip_scope=global``: every module
by the same factor) and per module (``module``, the recipe's choice; docs/models/joint_lstm.md, 11b).
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from vidrec.convert import load_torchvision
from vidrec.data import synthetic
from vidrec.losses import LOSSES
from vidrec.models import build_model

_SIZE = flags.DEFINE_integer("size", 384, "Frame side (the paper: 384; the maps are size / 16 - 2 halved).")
_FRAMES = flags.DEFINE_integer("frames", 30, "Clip length L1 (the paper: 30).")
_BATCH = flags.DEFINE_integer("batch", 1, "Clips in the batch.")
_LAMBDA = flags.DEFINE_float("lambda_att", 1000.0, "lambda of J10 (the paper: 1000).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "", "torchvision VGG16 .pth; empty: random torchvision weights.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random VGG16, the head's initialisation and the videos.")

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def random_vgg16_checkpoint(directory: str, seed: int) -> str:
  """A ``torchvision.models.vgg16()`` state dict with torchvision's random initialisation, saved as a
  user's downloaded ``.pth`` would be."""
  from vidrec.convert import parity   # torch and torchvision, imported without triton (see there)
  torch, torchvision = parity.torch, parity.torchvision
  torch.manual_seed(seed)
  path = os.path.join(directory, "vgg16_random.pth")
  torch.save(torchvision.models.vgg16().state_dict(), path)
  return path


def clips(num: int, frames: int, size: int, seed: int) -> np.ndarray:
  """[num, frames, size, size, 3] ImageNet-normalised frames of ``synthetic_actions`` videos."""
  rng = np.random.default_rng(seed)
  out = []
  for i in range(num):
    video = synthetic.render_video(i % synthetic.NUM_CLASSES, rng, 64, frames).astype(np.float32) / 255
    video = jax.image.resize(video, (frames, size, size, 3), "bilinear")
    out.append((np.asarray(video) - IMAGENET_MEAN) / IMAGENET_STD)
  return np.stack(out)


def term_gradients(model: Any, params: dict, video: np.ndarray, labels: np.ndarray, loss_cfg: Any,
                   seed: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
  """(term values, {group: {top-level module: gradient norm}}) of the ``joint_lstm`` loss in training
  mode, for every term, ``CE`` (the cross-entropies), ``lambda R`` (the ``att_reg_*`` terms) and
  ``total``: one forward pass, one backward pass per group (``jax.vjp``)."""
  def terms(p):
    out = model.apply({"params": p}, video, train=True, rngs={"dropout": jax.random.key(seed)})
    return LOSSES.get("joint_lstm")(jax.tree.map(lambda x: x.astype(jnp.float32), out), labels, loss_cfg, p)

  values, pullback = jax.vjp(terms, params)
  reg = [k for k in values if k.startswith("att_reg_")]
  groups = {**{k: [k] for k in values}, "CE": [k for k in values if k not in reg], "lambda R": reg,
            "total": list(values)}
  norms = {}
  for group, names in groups.items():
    (g,) = pullback({k: jnp.asarray(float(k in names), v.dtype) for k, v in values.items()})
    norms[group] = {m: float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(sub))))
                    for m, sub in g.items()}
  return {k: float(v) for k, v in values.items()}, norms


def main(argv: Sequence[str]) -> None:
  del argv
  from configs.recipes import joint_lstm as recipe
  cfg = recipe.get_config("ucf101")
  cfg.loss.lambda_att = _LAMBDA.value
  cfg.model.last_steps = min(cfg.model.last_steps, _FRAMES.value)
  num_classes = 101
  with tempfile.TemporaryDirectory() as tmp:
    path = _CHECKPOINT.value or random_vgg16_checkpoint(tmp, _SEED.value)
    _, vgg_vars = load_torchvision("vgg16", path)
  model = build_model(cfg.model, num_classes)
  video = clips(_BATCH.value, _FRAMES.value, _SIZE.value, _SEED.value)
  params = jax.jit(lambda r: model.init(r, video[:1], train=False))(jax.random.key(_SEED.value))["params"]
  params = {**params, "vgg": {k: jnp.asarray(v) if not isinstance(v, dict) else jax.tree.map(jnp.asarray, v)
                              for k, v in vgg_vars["params"].items() if k in params["vgg"]}}
  labels = np.arange(_BATCH.value) % num_classes
  values, norms = term_gradients(model, params, video, labels, cfg.loss, _SEED.value)
  total = lambda per_module: float(np.sqrt(sum(v * v for v in per_module.values())))  # noqa: E731
  print(f"VGG16: {_CHECKPOINT.value or f'random torchvision weights (seed {_SEED.value})'}; clips "
        f"{_BATCH.value} x {_FRAMES.value} x {_SIZE.value}^2, lambda {_LAMBDA.value:g}")
  print("| term | value | gradient norm | reaches (module: gradient norm) |")
  print("| --- | --- | --- | --- |")
  for group, per_module in norms.items():
    value = sum(values[k] for k in values if group in (k, "total") or
                (group == "CE") == (not k.startswith("att_reg_")) and group in ("CE", "lambda R"))
    reach = ", ".join(f"{m}: {v:.3g}" for m, v in sorted(per_module.items()) if v > 0)
    print(f"| {group} | {value:.4g} | {total(per_module):.4g} | {reach} |")
  print(f"CE's share of the total gradient norm: {total(norms['CE']) / total(norms['total']):.3g}")
  clip, modules = cfg.optimizer.grad_clip_norm, norms["total"]
  print(f"Step scale at grad_clip_norm {clip:g}: global {min(1.0, clip / total(modules)):.3g} for every module; "
        "module " + ", ".join(f"{m}: {min(1.0, clip / v):.3g}" for m, v in sorted(modules.items()) if v > 0))


if __name__ == "__main__":
  app.run(main)
