"""U2S: the universal-to-specific framework (Zhao, Xie, Zhang, Tian; paper 003, Sec. III).

Three subnetworks (Fig. 2):

* UN (universal network) and CSN (category-specific network): the same "top-heavy" ResNet (Sec. III-A
  "Subnetworks"): Res2D stem + groups 0-1 run per frame on ``[B*T, H, W, C]``; the tensor is then
  reorganised to ``[B, T, H, W, C]`` (the paper's N x T x C x H x W, channels-last) and groups 2-3 are
  Res3D. Pre-activation BN (He et al. 2016, [63]) throughout. UN and CSN *share* the Res2D part (one
  copy, ``params["res2d"]``; both branches see the same video, so it is computed once and its
  gradient is the sum of both branches') and each owns its Res3D groups (``un_top`` / ``csn_top``)
  and classifier (``un_head`` / ``csn_head``).
* MN (mask network, Fig. 3): a 1x1x1 conv ``params["mask_net"]["mask_conv"]`` (kernel ``W in R^{C x M}``)
  maps UN's group-3 features to M class masks; their global average gives ``logits_mn`` (L_M). The masks
  of the classes confusing with UN's predicted class (column of the binary CSM) are averaged into one
  ``[B, T, H, W, 1]`` mask, normalised (``mask_norm``) and applied to CSN's group-3 features before
  pooling.
* CSM (Eq. 1-2, :mod:`vidrec.models.csm`): the per-class mean channel sparsity of UN's group-3 output
  lives in the Flax collection ``"u2s_stats"`` (``class_sparsity [M, C]``, ``class_count [M]``,
  ``updates []``). The paper's staged schedule (``vidrec.procedures.u2s``) fills it once from the trained UN
  over the whole training set and sets ``csm_frozen``; the online schedule updates it with every
  ``train=True`` step that has ground-truth ``labels``, and until ``updates >= csm_warmup_steps`` the
  CSM is the identity (the MN uses the predicted class alone).

Config keys (``config.model``; defaults in brackets):

* ``name``: ``"u2s"``.
* ``depth`` [50]: 18 / 34 (basic blocks) or 50 / 101 (bottleneck blocks).
* ``width`` [64]: base channels (group g has ``width * 2**g`` planes; x4 for bottlenecks).
* ``base`` ["top_heavy"]: ``"top_heavy"`` (Res2D stem + groups 0-1, Res3D groups 2-3) or ``"tsm"``
  (Table V: all groups 2D with a temporal shift in every residual branch; groups 2-3 are still the
  per-branch part).
* ``preact`` [None]: pre-activation blocks; None = True for ``top_heavy`` (the paper), False for ``tsm``
  (TSM's torchvision ResNet).
* ``variant`` ["u2s"]: Table III settings: ``"u2s"`` (a), ``"simple"`` (b: only the predicted class's
  mask), ``"soft_csm"`` (c: S instead of C selects the masks), ``"no_mn"`` (d: two branches, no mask),
  ``"non_local"`` (e: a non-local block [26] on CSN's group-3 features instead of the MN), ``"oracle"``
  (f: the ground-truth ``labels`` select the masks, also at test time: ``labels`` is required), and
  ``"one_pass"`` (UN alone; ``logits`` = UN logits).
* ``mask_norm`` ["multiply"]: how the combined mask ``m`` weights CSN's features ``F``:
  ``"multiply"`` ``sigmoid(m) * F`` (context gating, the paper's [65]); ``"sigmoid_residual"``
  ``F * (1 + sigmoid(m))``; ``"softmax"`` ``F * softmax_{T,H,W}(m) * (T H W)`` (average pooling then
  equals attention pooling).
* ``csm_distance`` ["centred_cosine"]: f_dist of Eq. 2: ``"centred_cosine"`` (cosine of the class
  vectors minus their mean), ``"cosine"`` or ``"l1"`` (normalised L1).
* ``csm_alpha`` [None]: fixed threshold alpha of ``C = [S > alpha]``; None = chosen so that each class
  has ``csm_num_confusing`` confusing classes on average, itself included.
* ``csm_num_confusing`` [5]: N of that rule; None = Sec. IV-B's top-N rule, which only the staged
  schedule resolves (it writes the N it finds into the later stages' configs).
* ``csm_warmup_steps`` [1000]: online schedule: training updates of the statistics before the CSM is used.
* ``csm_frozen`` [False]: the statistics are never updated and the CSM is always used (the staged
  schedule's stages 2-3, after the statistics pass).
* ``stats_momentum`` [None]: online schedule: None = exact cumulative mean of every example seen (the
  paper's average over all samples); a float = per-class EMA momentum.
* ``combine`` ["mean_softmax"]: ``logits`` = ``log(mean_k softmax(logits_k))`` (Sec. IV-B "Testing",
  Table I: averaged scores; the log keeps softmax-based view aggregation exact) or ``"sum_logits"``.
* ``combine_mn`` [True]: also fuse the MN ("bridge") prediction (Table I's best row: universal + bridge +
  specific).
* ``tsm_fold_div`` [8]: TSM shifts ``C // fold_div`` channels each way.
* ``dropout_rate`` [0.0]: dropout before the classifiers (the paper does not mention any).
* ``remat`` [False]: recompute every residual block in the backward pass (``layers.remat_block``).
* ``dtype`` / ``param_dtype`` ["float32"]: compute / parameter dtypes (``vidrec.models.dtype_of``).

Outputs (``[B, ...]`` unless noted): ``logits`` (combined), ``logits_un``, ``features_un`` (pooled,
``[B, C]``), ``sparsity`` (Eq. 1 of UN's group 3, ``[B, C]``) and, except for ``one_pass``,
``logits_csn``, ``features_csn``. MN variants add ``logits_mn``, ``mask`` (the normalised mask
``[B, T, h, w, 1]``), ``mask_weights`` (``[B, M]``, the per-class weights averaged into the mask) and
two *non-batch*
outputs: ``csm`` (``[M, M]`` binary CSM in use, diagonal 1) and ``similarity`` (``[M, M]`` S of Eq. 2).

Loss ``config.loss.name = "u2s"`` (Eq. 3): ``{"un": L_U, "csn": L_C, "mn": L_M,
"w_regular": lambda * w_regular}`` (terms of absent branches are left out). Keys: ``w_regular_weight``
(lambda, [0.5], Sec. IV-B), ``w_similarity`` (["clipped_cosine"] or ``"shifted_cosine"``: s of Eq. 4),
``label_smoothing`` [0.0].

Reading choices where the paper is silent are listed in ``docs/models/u2s.md``.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections


from vidrec.errors import UserError
from vidrec.losses import LOSSES, cross_entropy
from vidrec.models import MODELS, dtype_of
from vidrec.models import csm as csm_lib
from vidrec.models.layers import HE_FAN_OUT, Conv, ConvBN, Dtype, batch_norm, remat_block

VARIANTS = ("u2s", "simple", "soft_csm", "no_mn", "non_local", "oracle", "one_pass")
MN_VARIANTS = ("u2s", "simple", "soft_csm", "oracle")
MASK_NORMS = ("multiply", "sigmoid_residual", "softmax")
BASES = ("top_heavy", "tsm")
COMBINES = ("mean_softmax", "sum_logits")
STATS_COLLECTION = "u2s_stats"

# depth -> (bottleneck, blocks per group 0..3)
_DEPTHS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)),
           50: (True, (3, 4, 6, 3)), 101: (True, (3, 4, 23, 3))}


def temporal_shift(x: jnp.ndarray, fold_div: int = 8) -> jnp.ndarray:
  """TSM's shift (Lin et al. [69]) on ``[B, T, ..., C]``, zero-padded at the clip ends.

  With ``fold = C // fold_div``: channels ``[0, fold)`` move one step back in time (frame t receives
  frame t + 1), channels ``[fold, 2 fold)`` one step forward (frame t receives frame t - 1), the rest
  are unchanged (the official ``shift left`` / ``shift right`` folds).
  """
  fold = x.shape[-1] // fold_div
  if fold == 0:
    return x
  zero = jnp.zeros_like(x[:, :1, ..., :fold])
  back = jnp.concatenate([x[:, 1:, ..., :fold], zero], axis=1)
  fwd = jnp.concatenate([zero, x[:, :-1, ..., fold:2 * fold]], axis=1)
  return jnp.concatenate([back, fwd, x[..., 2 * fold:]], axis=-1)


class _Block(nn.Module):
  """Residual block, basic or bottleneck, 2D (``[N, H, W, C]``) or 3D (``[B, T, H, W, C]``).

  Pre-activation layout ([63]): ``h = ReLU(BN(x))``; ``out = shortcut + F(h)`` with ``F`` =
  conv-BN-ReLU-conv (basic) or 1x1-BN-ReLU-3x3-BN-ReLU-1x1 (bottleneck), the projection shortcut (when
  shapes change) reading ``h`` and the identity reading ``x``. ``skip_preact`` drops the input BN-ReLU
  (first block after the stem, whose output is already BN-ReLU'd). Post-activation layout (TSM base):
  ``ReLU(BN-ed F(x) + shortcut(x))`` of ``layers.ConvBN`` units. ``num_segments > 0`` applies
  :func:`temporal_shift` to the residual branch input (TSM's residual shift); the 2D input is then
  ``[B * num_segments, H, W, C]``.
  3D blocks use 3x3x3 convs (basic: both; bottleneck: the middle one) and stride ``(1, s, s)``;
  convolutions are ``layers.Conv`` (3D ones take the project's CPU path, ``layers.conv3d_impl``).
  """
  planes: int
  stride: int = 1
  bottleneck: bool = False
  ndim: int = 2
  preact: bool = True
  skip_preact: bool = False
  num_segments: int = 0
  fold_div: int = 8
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _shift(self, h: jnp.ndarray) -> jnp.ndarray:
    if self.num_segments <= 0:
      return h
    t = self.num_segments
    shifted = temporal_shift(h.reshape((-1, t) + h.shape[1:]), self.fold_div)
    return shifted.reshape(h.shape)

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    nd = self.ndim
    k3, k1 = (3,) * nd, (1,) * nd
    st = (self.stride,) * nd if nd == 2 else (1, self.stride, self.stride)
    common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    out_ch = self.planes * (4 if self.bottleneck else 1)
    project = self.stride != 1 or x.shape[-1] != out_ch

    if self.preact:
      conv = functools.partial(Conv, use_bias=False, kernel_init=HE_FAN_OUT, **common)
      bn_relu = lambda name, h: nn.relu(batch_norm(train, name=name, **common)(h))  # noqa: E731
      h = x if self.skip_preact else bn_relu("bn_in", x)
      shortcut = conv(out_ch, k1, st, name="proj")(h) if project else x
      h = self._shift(h)
      if self.bottleneck:
        h = conv(self.planes, k1, name="conv1")(h)
        h = conv(self.planes, k3, st, name="conv2")(bn_relu("bn1", h))
        h = conv(out_ch, k1, name="conv3")(bn_relu("bn2", h))
      else:
        h = conv(self.planes, k3, st, name="conv1")(h)
        h = conv(self.planes, k3, name="conv2")(bn_relu("bn1", h))
      return shortcut + h

    unit = functools.partial(ConvBN, **common)
    h = self._shift(x)
    if self.bottleneck:
      h = unit(self.planes, k1, name="conv1")(h, train)
      h = unit(self.planes, k3, st, name="conv2")(h, train)
      h = unit(out_ch, k1, relu=False, name="conv3")(h, train)
    else:
      h = unit(self.planes, k3, st, name="conv1")(h, train)
      h = unit(self.planes, k3, relu=False, name="conv2")(h, train)
    shortcut = unit(out_ch, k1, st, relu=False, name="proj")(x, train) if project else x
    return nn.relu(shortcut + h)


class _Trunk(nn.Module):
  """The shared Res2D part: stem (7x7/2 conv-BN-ReLU, 3x3/2 max pool) + groups 0-1, per frame."""
  depth: int
  width: int
  preact: bool
  num_segments: int = 0           # > 0: TSM shifts
  fold_div: int = 8
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    bottleneck, blocks = _DEPTHS[self.depth]
    x = ConvBN(self.width, (7, 7), (2, 2), dtype=self.dtype, param_dtype=self.param_dtype,
               name="stem")(x, train)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for g in (0, 1):
      for b in range(blocks[g]):
        block = remat_block(_Block, self.remat)
        x = block(self.width * 2 ** g, stride=2 if (g > 0 and b == 0) else 1, bottleneck=bottleneck,
                  ndim=2, preact=self.preact, skip_preact=self.preact and g == 0 and b == 0,
                  num_segments=self.num_segments, fold_div=self.fold_div, dtype=self.dtype,
                  param_dtype=self.param_dtype, name=f"group{g}_block{b}")(x, train)
    return x


class _Top(nn.Module):
  """One branch's own groups 2-3 (Res3D for ``top_heavy``, 2D + shift for ``tsm``).

  Input: the trunk output ``[B*T, h, w, C]``; output: group-3 features ``[B, T, h', w', C']``, after the
  final BN-ReLU in the pre-activation layout (so that Eq. 1's zeros are ReLU zeros).
  """
  depth: int
  width: int
  base: str
  preact: bool
  num_segments: int
  fold_div: int = 8
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    bottleneck, blocks = _DEPTHS[self.depth]
    t = self.num_segments
    three_d = self.base == "top_heavy"
    if three_d:  # the 2D -> 3D transition: [B*T, h, w, C] -> [B, T, h, w, C]
      x = x.reshape((-1, t) + x.shape[1:])
    for g in (2, 3):
      for b in range(blocks[g]):
        block = remat_block(_Block, self.remat)
        x = block(self.width * 2 ** g, stride=2 if b == 0 else 1, bottleneck=bottleneck,
                  ndim=3 if three_d else 2, preact=self.preact,
                  num_segments=0 if three_d else t, fold_div=self.fold_div, dtype=self.dtype,
                  param_dtype=self.param_dtype, name=f"group{g}_block{b}")(x, train)
    if self.preact:
      x = nn.relu(batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype, name="final_bn")(x))
    if not three_d:
      x = x.reshape((-1, t) + x.shape[1:])
    return x


class _MaskNet(nn.Module):
  """Fig. 3: 1x1x1 conv C -> M class masks (``mask_conv``, kernel ``[C, M]`` = W of Eq. 4) + GAP logits."""
  num_classes: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, features: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    masks = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                     name="mask_conv")(features)                              # [B, T, h, w, M]
    logits = jnp.mean(masks.astype(jnp.float32), axis=(1, 2, 3))
    return masks, logits


class _NonLocal(nn.Module):
  """Embedded-Gaussian non-local block [26] over T x H x W (Table III (e)); identity at init."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    b, c = x.shape[0], x.shape[-1]
    inner = max(c // 2, 1)
    dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
    flat = x.reshape(b, -1, c)
    theta, phi, g = (dense(inner, name=n)(flat) for n in ("theta", "phi", "g"))
    attn = jax.nn.softmax(jnp.einsum("bic,bjc->bij", theta, phi).astype(jnp.float32), axis=-1)
    y = jnp.einsum("bij,bjc->bic", attn.astype(self.dtype), g)
    y = dense(c, name="out")(y)
    y = batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype, zero_init_scale=True, name="bn")(y)
    return x + y.reshape(x.shape)


def apply_mask(features: jnp.ndarray, mask_logits: jnp.ndarray,
               mask_norm: str) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Normalises the combined mask ``[B, T, h, w, 1]`` and weights ``features`` with it.

  Returns ``(masked features, normalised mask)``; see the module docstring for ``mask_norm``.
  """
  m = mask_logits.astype(jnp.float32)
  if mask_norm in ("sigmoid_residual", "multiply"):
    a = jax.nn.sigmoid(m)
    scale = 1.0 + a if mask_norm == "sigmoid_residual" else a
  elif mask_norm == "softmax":
    b = m.shape[0]
    a = jax.nn.softmax(m.reshape(b, -1), axis=-1).reshape(m.shape)
    scale = a * (m.size // b)
  else:
    raise UserError(f"Unknown mask_norm {mask_norm!r}; use one of {MASK_NORMS}.")
  return features * scale.astype(features.dtype), a


class U2S(nn.Module):
  """The U2S model; see the module docstring for the attributes (same names as the config keys)."""
  num_classes: int
  depth: int = 50
  width: int = 64
  base: str = "top_heavy"
  preact: bool | None = None
  variant: str = "u2s"
  mask_norm: str = "multiply"
  csm_distance: str = "centred_cosine"
  csm_alpha: float | None = None
  csm_num_confusing: float | None = 5
  csm_warmup_steps: int = 1000
  csm_frozen: bool = False
  stats_momentum: float | None = None
  combine: str = "mean_softmax"
  combine_mn: bool = True
  tsm_fold_div: int = 8
  dropout_rate: float = 0.0
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _check(self) -> None:
    for key, value, allowed in (("variant", self.variant, VARIANTS), ("base", self.base, BASES),
                                ("mask_norm", self.mask_norm, MASK_NORMS),
                                ("combine", self.combine, COMBINES),
                                ("csm_distance", self.csm_distance, csm_lib.DISTANCES),
                                ("depth", self.depth, tuple(_DEPTHS))):
      if value not in allowed:
        raise UserError(f"u2s: unknown {key} {value!r}; use one of {allowed}.")

  def _head(self, name: str, pooled: jnp.ndarray, train: bool) -> jnp.ndarray:
    if self.dropout_rate > 0:
      pooled = nn.Dropout(self.dropout_rate, deterministic=not train, name=f"{name}_dropout")(pooled)
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                    name=name)(pooled).astype(jnp.float32)

  def _combine(self, logits: list[jnp.ndarray]) -> jnp.ndarray:
    if self.combine == "sum_logits":
      return sum(logits)
    logp = jnp.stack([jax.nn.log_softmax(l) for l in logits])
    return jax.nn.logsumexp(logp, axis=0) - jnp.log(float(len(logits)))

  @nn.compact
  def __call__(self, video: jnp.ndarray, *, train: bool = False,
               labels: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
    self._check()
    b, t, h, w, ch = video.shape
    preact = self.preact if self.preact is not None else self.base == "top_heavy"
    tsm = self.base == "tsm"
    common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    top = functools.partial(_Top, self.depth, self.width, self.base, preact, t,
                            fold_div=self.tsm_fold_div, remat=self.remat, **common)

    x = video.astype(self.dtype).reshape(b * t, h, w, ch)
    x = _Trunk(self.depth, self.width, preact, num_segments=t if tsm else 0,
               fold_div=self.tsm_fold_div, remat=self.remat, name="res2d", **common)(x, train)

    f_un = top(name="un_top")(x, train)                                          # [B, T, h, w, C]
    pooled_un = jnp.mean(f_un, axis=(1, 2, 3))
    logits_un = self._head("un_head", pooled_un, train)
    out = {"logits_un": logits_un, "features_un": pooled_un.astype(jnp.float32),
           "sparsity": csm_lib.channel_sparsity(f_un)}
    if self.variant == "one_pass":
      out["logits"] = logits_un
      return out

    f_csn = top(name="csn_top")(x, train)
    fused = [logits_un]
    if self.variant == "non_local":
      f_csn = _NonLocal(name="non_local", **common)(f_csn, train)
    elif self.variant in MN_VARIANTS:
      f_csn = self._mask_network(f_un, f_csn, logits_un, labels, train, out)
      if self.combine_mn:
        fused.append(out["logits_mn"])
    pooled_csn = jnp.mean(f_csn, axis=(1, 2, 3))
    out["logits_csn"] = self._head("csn_head", pooled_csn, train)
    out["features_csn"] = pooled_csn.astype(jnp.float32)
    fused.append(out["logits_csn"])
    out["logits"] = self._combine(fused)
    return out

  def _mask_network(self, f_un, f_csn, logits_un, labels, train, out):
    """MN + CSM (Fig. 3, Eq. 1-2): fills ``out`` and returns CSN's masked group-3 features."""
    num, c = self.num_classes, f_un.shape[-1]
    mean = self.variable(STATS_COLLECTION, "class_sparsity", jnp.zeros, (num, c), jnp.float32)
    count = self.variable(STATS_COLLECTION, "class_count", jnp.zeros, (num,), jnp.int32)
    updates = self.variable(STATS_COLLECTION, "updates", jnp.zeros, (), jnp.int32)

    # CSM from the statistics gathered so far (before this step's update).
    sim = csm_lib.class_similarity(mean.value, count.value, self.csm_distance)
    binary = csm_lib.binary_csm(sim, self.csm_alpha, self.csm_num_confusing)
    ready = jnp.logical_or(self.csm_frozen, updates.value >= self.csm_warmup_steps)
    eye = jnp.eye(num, dtype=jnp.float32)
    binary = jnp.where(ready, binary, eye)
    soft = jnp.where(ready, sim, eye)

    if self.variant == "oracle" and labels is not None:
      index = labels
    elif self.variant == "oracle" and not self.is_initializing():
      raise ValueError("u2s variant 'oracle' needs the ground-truth `labels` (train and test).")
    else:  # UN's prediction (also the oracle's placeholder while initialising without labels)
      index = jnp.argmax(jax.lax.stop_gradient(logits_un), axis=-1)
    if self.variant == "simple":
      weights = jax.nn.one_hot(index, num, dtype=jnp.float32)
    else:
      weights = csm_lib.selection_weights(soft if self.variant == "soft_csm" else binary, index)

    masks, logits_mn = _MaskNet(num, self.dtype, self.param_dtype, name="mask_net")(f_un)
    combined = jnp.einsum("bthwm,bm->bthw", masks, weights.astype(masks.dtype))[..., None]
    f_csn, mask = apply_mask(f_csn, combined, self.mask_norm)

    xi = out["sparsity"]
    if (train and labels is not None and not self.csm_frozen and not self.is_initializing()
        and self.is_mutable_collection(STATS_COLLECTION)):
      mean.value, count.value = csm_lib.update_class_stats(
          mean.value, count.value, xi, labels, self.stats_momentum)
      updates.value = updates.value + 1

    out.update(logits_mn=logits_mn, mask=mask, mask_weights=weights, csm=binary, similarity=sim)
    return f_csn


_KEYS = ("depth", "width", "base", "preact", "variant", "mask_norm", "csm_distance", "csm_alpha",
         "csm_num_confusing", "csm_warmup_steps", "csm_frozen", "stats_momentum", "combine", "combine_mn",
         "tsm_fold_div", "dropout_rate", "remat")


@MODELS.register("u2s")
def build(cfg: ml_collections.ConfigDict, num_classes: int) -> U2S:
  """Builds :class:`U2S` from ``config.model`` (keys in the module docstring; missing keys = defaults)."""
  kwargs = {k: cfg[k] for k in _KEYS if k in cfg}
  return U2S(num_classes=num_classes, dtype=dtype_of(cfg.get("dtype", "float32")),
             param_dtype=dtype_of(cfg.get("param_dtype", "float32")), **kwargs)


def mask_kernel(params: Any) -> jnp.ndarray:
  """The MN's 1x1x1 conv kernel ``W [C, M]`` from a params tree (with or without a ``params`` level)."""
  if "params" in params and "mask_net" not in params:
    params = params["params"]
  return params["mask_net"]["mask_conv"]["kernel"]


@LOSSES.register("u2s")
def u2s_loss(outputs: dict, labels: jnp.ndarray, cfg: ml_collections.ConfigDict,
             params: Any) -> dict[str, jnp.ndarray]:
  """Eq. 3: ``L = L_U + L_C + L_M + lambda * w_regular`` as named weighted terms.

  ``un`` / ``csn`` / ``mn``: cross-entropy (with ``label_smoothing``) on ``logits_un`` / ``logits_csn``
  / ``logits_mn``; ``w_regular``: ``w_regular_weight * w_regular`` (Eq. 4-6) over the pairs of
  ``outputs["csm"] - I`` with the MN kernel from ``params``. Terms whose outputs are absent (one_pass,
  no_mn, non_local) are left out.
  """
  ls = cfg.get("label_smoothing", 0.0)
  terms = {"un": cross_entropy(outputs["logits_un"], labels, ls)}
  if "logits_csn" in outputs:
    terms["csn"] = cross_entropy(outputs["logits_csn"], labels, ls)
  if "logits_mn" in outputs:
    terms["mn"] = cross_entropy(outputs["logits_mn"], labels, ls)
  if "csm" in outputs:
    lam = cfg.get("w_regular_weight", 0.5)
    terms["w_regular"] = lam * csm_lib.w_regular(mask_kernel(params), outputs["csm"],
                                                 cfg.get("w_similarity", "clipped_cosine"))
  return terms
