"""SGN: weakly Semantic Guided Network (paper 000, Sec. III-B/C, IV-C..E) on the ResNet3D of resnet3d.py.

Semantic Guided Modules (SGMs) map a feature map ``F`` to a gate ``alpha`` of the gated block's output shape:

- SGM-S (Eq. 9):  alpha = softmax(F * W_s + B_s)
- SGM-M (Eq. 10): alpha = softmax(tanh(F * W_s + B_s) * W_m + B_m)
- SGM-G (Eq. 11-13): L = tanh(F * W_L + B_L), R = tanh(F * W_R + B_R), P = sigmoid(F * W_G + B_G),
  alpha = softmax(P . L + (1 - P) . R)

(``*`` a 3x3x3 convolution with bias, ``.`` the element-wise product.) A Semantic Guided Block (SGB,
Eq. 17) multiplies a residual block's output by ``alpha``: RIB -> (H(F) + F) . alpha, RCB ->
(H(F) + H'(F)) . alpha. The convolutions of an SGM that read ``F`` carry the block's stride (padding 1), so
``alpha`` has exactly the block output's shape (Fig. 5); SGM-M's second convolution has stride 1. The
hidden width of SGM-M (and L, R, P of SGM-G) is the block's output width.

Readings the paper leaves open (see docs/models/sgn.md):

- softmax axis: ``softmax_axis="channel"`` (default; what Caffe's Softmax layer does by default, and the
  ResNet3D the paper builds on is Caffe's, footnote 1) normalises over channels at each (t, h, w);
  ``"spacetime"`` over all (t, h, w) per channel.
- gate scale (``GATES``): ``gate="mean_one_softmax"`` (default) is K times the softmax over its K entries
  (mean 1 instead of Eq. 9-13's 1/K, which scales a gated block's output, identity shortcut included,
  by ~1/K: at RIB5b, where no BatchNorm follows, that shrinks every gradient by ~alpha^2 and the block
  does not train); ``"softmax"`` is the equations as printed; ``"sigmoid"`` an element-wise sigmoid (not
  in the paper). ``sgm_init="zero"`` (default) zero-initialises the convolutions that produce the
  gate's pre-activation, so alpha == 1 and every SGB starts as its RCB/RIB (the paper fine-tunes a
  Sports-1M ResNet3D, Sec. IV-B); ``"lecun"`` initialises them like the rest. Sentences and
  measurements: docs/models/sgn.md, reading 4.
- ResNet3D's block returns ReLU(H + H'); since alpha > 0 (softmax and sigmoid are positive),
  ReLU(y) . alpha = ReLU(y . alpha), so gating the block's output is exactly Eq. 17 followed by the
  block's usual post-addition ReLU.
- Cross-layer SGMs (Sec. III-B, IV-E, Fig. 6), ``cross_layer={dest: source}``: the SGM of ``dest`` reads
  the output of the earlier block ``source`` (or ``"stem"``) instead of the block input. Resampling to the
  destination grid: ``cross_layer_resample="strided"`` (default) gives the SGM's first convolutions the
  total stride between source and destination (the same rule as a same-layer SGM, whose input is the
  previous block's output); ``"avgpool"`` average-pools the source by that stride first and then applies
  a stride-1 SGM. ``cross_layer_mode="direct"`` is the paper's baseline (Sec. IV-E: "employ the former
  layer feature maps as semantic guidances directly via down sampling"): no learned SGM; the source is
  subsampled by the stride (``x[:, ::s_t, ::s_h, ::s_w]``), its channels are repeated to the destination
  width (nearest neighbour along channels: destination channel c reads source channel c * C_src // C_dst),
  and the result goes through the same gate (softmax over ``softmax_axis`` or sigmoid).
- ``rcb`` (a ResNet3D key): ``"eq15"`` gives every RCB a 3x3x3 convolutional shortcut H' (Eq. 15);
  the default ``"torchvision"`` keeps r3d_18's layout (identity at RCB2a) for weight compatibility.

Outputs: ``{"logits", "embedding", "alpha/<block>": f32[N, T', H', W', C'] for each gated block}`` (the
gate as applied).

Config (``config.model``, name ``"sgn"``; all ResNet3D keys too): ``sgm`` ("S" | "M" | "G", default
"M"), ``sgm_blocks`` (block names such as "2a".."5b" or "all_rcb" / "all_rib" / "all"; a list or a
comma-separated string; default ["3b"]), ``cross_layer`` (dict dest -> source, or "3b:2b,4b:3b"; default
none), ``cross_layer_mode`` ("learned" | "direct"), ``cross_layer_resample`` ("strided" | "avgpool"),
``softmax_axis`` ("channel" | "spacetime"), ``gate`` ("mean_one_softmax" | "softmax" | "sigmoid"),
``sgm_init`` ("zero" | "lecun"), ``gate_bound`` (b: the gate reads b tanh(z / b); 0 = z as is, the default;
the SGN recipe uses 0.5 so an unclipped gate cannot saturate: docs/models/sgn.md, reading 4b).

"SGN + Frame" (Tables V-VII) is a late fusion of evaluated models: ``vidrec.tools.fuse``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


from vidrec.errors import UserError
from vidrec.models import MODELS
from vidrec.models import resnet2d as _resnet2d  # noqa: F401  registers "resnet2d_frame" (SGN + Frame)
from vidrec.models.layers import Dtype, ResBlock3D
from vidrec.models.resnet3d import BLOCKS, RCB_SHORTCUTS, ResNet3D, block_names, block_strides, resnet3d_kwargs
from vidrec.registry import Registry

SGM_KINDS = ("S", "M", "G")
SOFTMAX_AXES = {"channel": (-1,), "spacetime": (1, 2, 3)}
SGM_INITS = ("zero", "lecun")
CROSS_LAYER_MODES = ("learned", "direct")
CROSS_LAYER_RESAMPLES = ("strided", "avgpool")

# The SGM's last nonlinearity: ``gate(z, axes) -> alpha`` on pre-activations z [N, T, H, W, C] (float32);
# ``axes`` are the softmax axes (``SOFTMAX_AXES[softmax_axis]``).
GATES: Registry[Callable[[jnp.ndarray, tuple[int, ...]], jnp.ndarray]] = Registry("model.gate")


@GATES.register("mean_one_softmax")
def _mean_one_softmax(z: jnp.ndarray, axes: tuple[int, ...]) -> jnp.ndarray:
  """K * softmax over ``axes`` (K entries): the softmax of Eq. 9-13 with mean 1 instead of 1/K."""
  return float(np.prod([z.shape[a] for a in axes])) * jax.nn.softmax(z, axis=axes)


@GATES.register("softmax")
def _softmax(z: jnp.ndarray, axes: tuple[int, ...]) -> jnp.ndarray:
  """Eq. 9-13 literally: sums to 1 over ``axes`` (mean 1/K)."""
  return jax.nn.softmax(z, axis=axes)


@GATES.register("sigmoid")
def _sigmoid(z: jnp.ndarray, axes: tuple[int, ...]) -> jnp.ndarray:
  """Element-wise sigmoid (not in the paper; Sec. IV-J contrasts SENet's sigmoid with SGN's softmax)."""
  del axes
  return jax.nn.sigmoid(z)


def _check_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
  if value not in choices:
    raise UserError(f"config.model.{key}={value!r}: use one of {list(choices)}")


def bound_z(z: jnp.ndarray, bound: float) -> jnp.ndarray:
  """``bound * tanh(z / bound)``: z squashed into (-bound, bound), ~z where |z| << bound (0: z as is)."""
  if bound < 0:
    raise UserError(f"config.model.gate_bound={bound}: use 0 (no bound) or a positive number such as 1")
  return bound * jnp.tanh(z / bound) if bound else z


def apply_gate(z: jnp.ndarray, gate: str = "mean_one_softmax", softmax_axis: str = "channel",
               bound: float = 0.0) -> jnp.ndarray:
  """alpha from the SGM pre-activations ``z`` [N, T, H, W, C] (bounded by ``bound_z``), computed in
  float32 (``GATES``)."""
  _check_choice("softmax_axis", softmax_axis, SOFTMAX_AXES)
  return GATES.get(gate)(bound_z(z.astype(jnp.float32), bound), SOFTMAX_AXES[softmax_axis])


class SGM(nn.Module):
  """Semantic Guided Module (Eq. 9-13): ``F`` [N, T, H, W, C_in] -> pre-gate ``z`` [N, T', H', W', features].

  Returns the pre-activation of the final gate (``apply_gate`` turns it into alpha), so the gate choice
  stays in one place. The convolutions reading ``F`` use ``strides`` and padding 1. ``gate_init="zero"``
  zero-initialises the convolutions that produce ``z`` (S: W_s; M: W_m; G: W_L and W_R), so ``z == 0``
  and alpha is uniform at initialisation; ``"lecun"`` gives them flax's default LeCun-normal init.
  """
  kind: str
  features: int
  strides: Sequence[int] = (1, 1, 1)
  gate_init: str = "zero"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, f: jnp.ndarray) -> jnp.ndarray:
    _check_choice("sgm", self.kind, SGM_KINDS)
    _check_choice("sgm_init", self.gate_init, SGM_INITS)
    conv = functools.partial(nn.Conv, self.features, (3, 3, 3), padding=((1, 1),) * 3, use_bias=True,
                             dtype=self.dtype, param_dtype=self.param_dtype)
    last = functools.partial(conv, kernel_init=nn.initializers.zeros) if self.gate_init == "zero" else conv
    strides = tuple(self.strides)
    if self.kind == "S":  # Eq. 9
      return last(strides=strides, name="conv_s")(f)
    if self.kind == "M":  # Eq. 10
      h = jnp.tanh(conv(strides=strides, name="conv_s")(f))
      return last(name="conv_m")(h)
    # SGM-G, Eq. 11-13.
    left = jnp.tanh(last(strides=strides, name="conv_l")(f))
    right = jnp.tanh(last(strides=strides, name="conv_r")(f))
    p = jax.nn.sigmoid(conv(strides=strides, name="conv_g")(f))
    return p * left + (1.0 - p) * right


def _total_strides(source: str, dest: str, names: Sequence[str], block: str = "r3d") -> tuple[int, int, int]:
  """Product of the block strides after ``source`` up to and including ``dest``."""
  start = 0 if source == "stem" else names.index(source) + 1
  total = np.ones(3, dtype=int)
  for name in names[start:names.index(dest) + 1]:
    total *= np.asarray(block_strides(name, block))
  return tuple(int(s) for s in total)


def _repeat_channels(x: jnp.ndarray, channels: int) -> jnp.ndarray:
  """Nearest-neighbour resampling along channels: output channel c reads input c * C_in // channels."""
  c_in = x.shape[-1]
  if c_in == channels:
    return x
  return jnp.take(x, np.arange(channels) * c_in // channels, axis=-1)


def expand_blocks(spec: str | Sequence[str] | None, names: Sequence[str]) -> tuple[str, ...]:
  """Block list from config: names, "all_rcb", "all_rib", "all"; a list or a comma-separated string."""
  if spec is None:
    return ()
  if isinstance(spec, str):
    spec = [s.strip() for s in spec.split(",") if s.strip()]
  groups = {"all": list(names), "all_rcb": [n for n in names if n[1] == "a"],
            "all_rib": [n for n in names if n[1] != "a"]}
  out: list[str] = []
  for item in spec:
    for name in groups.get(item, [item]):
      if name not in names:
        raise UserError(f"config.model.sgm_blocks: unknown block {name!r}; blocks of this network: "
                         f"{list(names)} (or 'all_rcb', 'all_rib', 'all')")
      if name not in out:
        out.append(name)
  return tuple(n for n in names if n in out)  # network order


def parse_cross_layer(spec: Any) -> tuple[tuple[str, str], ...]:
  """``{dest: source}`` (dict / ConfigDict) or "dest:source,..." -> sorted ((dest, source), ...)."""
  if not spec:
    return ()
  if isinstance(spec, str):
    pairs = []
    for item in spec.split(","):
      if item.strip():
        dest, _, source = item.partition(":")
        pairs.append((dest.strip(), source.strip()))
    return tuple(sorted(pairs))
  return tuple(sorted((str(k), str(v)) for k, v in dict(spec.items()).items()))


class SGN(ResNet3D):
  """ResNet3D whose blocks in ``sgm_blocks`` (and the destinations of ``cross_layer``) are SGBs (Eq. 17)."""
  sgm: str = "M"
  sgm_blocks: tuple[str, ...] = ("3b",)
  cross_layer: tuple[tuple[str, str], ...] = ()  # ((dest, source), ...)
  cross_layer_mode: str = "learned"
  cross_layer_resample: str = "strided"
  softmax_axis: str = "channel"
  gate: str = "mean_one_softmax"
  sgm_init: str = "zero"
  gate_bound: float = 0.0

  def gated_blocks(self) -> tuple[str, ...]:
    """All SGB block names, in network order (validates the configuration)."""
    names = block_names(self.num_stages, self.blocks_per_stage)
    _check_choice("sgm", self.sgm, SGM_KINDS)
    _check_choice("cross_layer_mode", self.cross_layer_mode, CROSS_LAYER_MODES)
    _check_choice("cross_layer_resample", self.cross_layer_resample, CROSS_LAYER_RESAMPLES)
    _check_choice("softmax_axis", self.softmax_axis, SOFTMAX_AXES)
    _check_choice("sgm_init", self.sgm_init, SGM_INITS)
    GATES.get(self.gate)
    blocks = set(expand_blocks(self.sgm_blocks, names))
    for dest, source in self.cross_layer:
      if dest not in names:
        raise UserError(f"config.model.cross_layer: unknown destination block {dest!r}; blocks: {names}")
      if source != "stem" and (source not in names or names.index(source) >= names.index(dest)):
        raise UserError(f"config.model.cross_layer: source {source!r} of {dest!r} must be 'stem' or a block "
                         f"before it (semantics flow forward only, Sec. IV-E); blocks: {names}")
      blocks.add(dest)
    return tuple(n for n in names if n in blocks)

  def block_output(self, name: str, block: ResBlock3D, x: jnp.ndarray,
                   features: dict[str, jnp.ndarray], train: bool) -> jnp.ndarray:
    y = block(x, train)
    if name not in self.gated_blocks():
      return y
    names = block_names(self.num_stages, self.blocks_per_stage)
    source = dict(self.cross_layer).get(name)
    if source is None:  # same-layer SGM on the block input F, with the block's stride
      f, strides, direct = x, tuple(block.strides), False
    else:
      f, strides = features[source], _total_strides(source, name, names, self.block)
      direct = self.cross_layer_mode == "direct"
    if direct:  # Sec. IV-E baseline: the subsampled source feature map itself is the mask
      z = _repeat_channels(f[:, ::strides[0], ::strides[1], ::strides[2]], y.shape[-1])
    else:
      if source is not None and self.cross_layer_resample == "avgpool" and strides != (1, 1, 1):
        f = nn.avg_pool(f, strides, strides, padding="SAME", count_include_pad=False)
        strides = (1, 1, 1)
      z = SGM(self.sgm, y.shape[-1], strides, self.sgm_init, dtype=self.dtype, param_dtype=self.param_dtype,
              name=f"sgm{name}")(f)
    if z.shape != y.shape:
      raise ValueError(f"SGM alpha for block {name} has shape {z.shape}, block output {y.shape}")
    alpha = apply_gate(z, self.gate, self.softmax_axis, self.gate_bound)
    features[f"alpha/{name}"] = alpha
    return y * alpha.astype(y.dtype)

  def extra_outputs(self, features: dict[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
    return {k: v for k, v in features.items() if k.startswith("alpha/")}


def sgn_kwargs(cfg: ml_collections.ConfigDict) -> dict:
  """The SGN fields read from ``config.model`` (besides the ResNet3D ones)."""
  sgm_blocks = cfg.get("sgm_blocks", ("3b",))
  if sgm_blocks is not None and not isinstance(sgm_blocks, str):
    sgm_blocks = tuple(sgm_blocks)
  return dict(sgm=str(cfg.get("sgm", "M")).upper(), sgm_blocks=sgm_blocks or (),
              cross_layer=parse_cross_layer(cfg.get("cross_layer", None)),
              cross_layer_mode=cfg.get("cross_layer_mode", "learned"),
              cross_layer_resample=cfg.get("cross_layer_resample", "strided"),
              softmax_axis=cfg.get("softmax_axis", "channel"), gate=cfg.get("gate", "mean_one_softmax"),
              sgm_init=cfg.get("sgm_init", "zero"), gate_bound=float(cfg.get("gate_bound", 0.0)))


@MODELS.register("sgn")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> SGN:
  BLOCKS.get(cfg.get("block", "r3d"))
  RCB_SHORTCUTS.get(cfg.get("rcb", "torchvision"))
  model = SGN(num_classes=num_classes, **resnet3d_kwargs(cfg), **sgn_kwargs(cfg))
  model.gated_blocks()  # fail at build time on a bad configuration
  return model
