"""U2S category similarity matrix (CSM) and category regularisation: pure functions (paper 003).

Pure functions (``jnp`` and jit-able, no Flax state, except the numpy top-N rule, which runs once on a
pass's scores), used by ``vidrec.models.u2s`` and the staged schedule ``vidrec.procedures.u2s``:

* :func:`channel_sparsity` -- Eq. 1, ``Xi^c = 1 - Q^c`` per example.
* :func:`update_class_stats` -- the per-class mean ``Xi_m`` (Sec. III-A "CSM"), batch by batch.
* :func:`class_similarity` -- Eq. 2, ``S = [1 - f_dist(Xi_i, Xi_j)]``.
* :func:`num_confusing_from_top_n` -- N of Sec. IV-B's rule (top-N accuracy >= a standard), in numpy.
* :func:`alpha_for_num_confusing`, :func:`binary_csm` -- the threshold ``alpha`` and ``C = [S > alpha]``.
* :func:`selection_weights` -- which class masks the mask network averages (Fig. 3, right panel).
* :func:`weight_similarity`, :func:`w_regular` -- Eq. 4-6.

All statistics are float32 whatever the model's compute dtype.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vidrec.errors import UserError

DISTANCES = ("centred_cosine", "cosine", "l1")
WEIGHT_SIMILARITIES = ("clipped_cosine", "shifted_cosine")


def channel_sparsity(features: jnp.ndarray) -> jnp.ndarray:
  """Eq. 1: ``Xi^c = 1 - Q^c``, Q^c = fraction of non-zero responses of channel c over T x H x W.

  Args:
    features: ``[B, T, H, W, C]`` (any number of middle axes) activations of UN's group 3 (after the
      final ReLU, so that zero means "not firing").
  Returns:
    ``[B, C]`` float32 sparsity in [0, 1]; no gradient flows through it.
  """
  features = jax.lax.stop_gradient(features)
  axes = tuple(range(1, features.ndim - 1))
  q = jnp.mean((features != 0).astype(jnp.float32), axis=axes)
  return 1.0 - q


def update_class_stats(mean: jnp.ndarray, count: jnp.ndarray, xi: jnp.ndarray, labels: jnp.ndarray,
                       momentum: float | None) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Per-class running mean of the sparsity vectors (Sec. III-A: ``Xi_m`` = average over class m).

  Only the classes present in the batch change. Let ``n_m`` be their number of examples in the batch and
  ``b_m`` the batch mean of their sparsity vectors.

  * ``momentum=None``: exact cumulative mean of every example seen,
    ``Xi_m <- (count_m * Xi_m + n_m * b_m) / (count_m + n_m)``.
  * ``momentum=mu``: per-class exponential moving average, ``Xi_m <- mu * Xi_m + (1 - mu) * b_m``, except
    the first time class m is seen (``count_m == 0``), where ``Xi_m <- b_m`` (no bias towards the zero
    initial value).

  Args:
    mean: ``[M, C]`` current per-class means.
    count: ``[M]`` int examples seen per class so far.
    xi: ``[B, C]`` per-example sparsity (:func:`channel_sparsity`).
    labels: ``[B]`` int ground-truth classes.
    momentum: None or a float in [0, 1).
  Returns:
    ``(new_mean [M, C] float32, new_count [M] same dtype as count)``.
  """
  num_classes = mean.shape[0]
  onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)        # [B, M]
  n = onehot.sum(0)                                                       # [M]
  total = onehot.T @ xi.astype(jnp.float32)                               # [M, C]
  present = (n > 0)[:, None]
  old = mean.astype(jnp.float32)
  if momentum is None:
    seen = count.astype(jnp.float32)[:, None]
    new = (old * seen + total) / jnp.maximum(seen + n[:, None], 1.0)
  else:
    batch_mean = total / jnp.maximum(n, 1.0)[:, None]
    ema = momentum * old + (1.0 - momentum) * batch_mean
    new = jnp.where((count > 0)[:, None], ema, batch_mean)
  new_mean = jnp.where(present, new, old)
  new_count = count + n.astype(count.dtype)
  return new_mean, new_count


def class_similarity(means: jnp.ndarray, counts: jnp.ndarray | None = None,
                     distance: str = "centred_cosine", eps: float = 1e-12) -> jnp.ndarray:
  """Eq. 2: ``s_ij = 1 - f_dist(Xi_i, Xi_j)``, an ``[M, M]`` float32 matrix in [0, 1] with unit diagonal.

  ``distance``:
    * ``"centred_cosine"``: ``s_ij = max(cos(Xi_i - mu, Xi_j - mu), 0)`` with ``mu`` the mean of the class
      vectors (of the classes with statistics): the cosine of each class's *deviation* from the average
      sparsity pattern. Uncentred sparsity vectors share a large common component (every class leaves
      the same channels mostly silent), which puts their plain cosine near 1 for every pair.
    * ``"cosine"``: ``s_ij = cos(Xi_i, Xi_j)``; the sparsity vectors are non-negative, so the cosine already
      lies in [0, 1] (clipped for safety; a zero vector has similarity 0 with everything).
    * ``"l1"``: normalised L1, ``f_dist = mean_c |Xi_i^c - Xi_j^c|`` (in [0, 1] since Xi in [0, 1]^C).

  Classes with ``counts == 0`` (no statistics yet) get similarity 0 with every other class.
  """
  m = means.astype(jnp.float32)
  valid = jnp.ones(m.shape[0], bool) if counts is None else counts > 0
  if distance not in DISTANCES:
    raise UserError(f"Unknown csm_distance {distance!r}; use one of {DISTANCES}.")
  if distance == "centred_cosine":
    w = valid.astype(jnp.float32)[:, None]
    m = m - jnp.sum(m * w, axis=0) / jnp.maximum(jnp.sum(w), 1.0)
  if distance == "l1":
    s = 1.0 - jnp.mean(jnp.abs(m[:, None, :] - m[None, :, :]), axis=-1)
  else:
    norm = jnp.linalg.norm(m, axis=-1)
    s = (m @ m.T) / jnp.maximum(norm[:, None] * norm[None, :], eps)
  s = jnp.clip(s, 0.0, 1.0)
  s = jnp.where(valid[:, None] & valid[None, :], s, 0.0)
  eye = jnp.eye(m.shape[0], dtype=bool)
  return jnp.where(eye, 1.0, s)


def num_confusing_from_top_n(scores: np.ndarray, labels: np.ndarray, standard: float) -> int:
  """Sec. IV-B: the smallest N whose top-N accuracy reaches ``standard`` (0.85 for Sth-Sth-V2).

  "We choose the threshold by letting the average number of confusing categories be N if this top-N
  accuracy can achieve a high standard". A sample counts as top-N correct when fewer than N classes
  score strictly higher than its label (ties in its favour, as ``metrics.topk_correct``).

  Args:
    scores: ``[num_samples, M]`` the UN's class scores (logits or probabilities).
    labels: ``[num_samples]`` int ground truth.
    standard: the accuracy to reach, in (0, 1].
  Returns:
    N in ``1..M`` (M reaches 100% by definition).
  """
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
  if not 0.0 < standard <= 1.0 or len(labels) == 0:
    raise UserError(f"The top-N rule needs samples and a standard in (0, 1], got {len(labels)} samples and "
                    f"{standard}.")
  rank = (scores > scores[np.arange(len(labels)), labels][:, None]).sum(1) + 1   # 1 = top-1 correct
  top_n = np.array([(rank <= n).mean() for n in range(1, scores.shape[1] + 1)])
  return int(np.argmax(top_n >= standard - 1e-12)) + 1


def alpha_for_num_confusing(similarity: jnp.ndarray, num_confusing: float) -> jnp.ndarray:
  """The threshold giving each class ``num_confusing`` = N confusing classes on average (Sec. IV-B).

  N counts the class itself, as the top-N set of the rule that picks N does (the diagonal of C is
  always positive): ``S > alpha`` must hold for ``k = round((N - 1) M)`` off-diagonal entries. Returns
  the ``k``-th largest off-diagonal similarity (0-based), which gives exactly ``k`` when there are no
  ties (fewer with ties, e.g. the symmetric pairs of S). ``N <= 1`` -> no confusing class besides
  itself; ``k >= M (M - 1)`` -> ``-inf`` (every pair is confusing).
  """
  num = similarity.shape[0]
  eye = jnp.eye(num, dtype=bool)
  off = jnp.where(eye, -jnp.inf, similarity.astype(jnp.float32)).reshape(-1)
  desc = -jnp.sort(-off)                                  # M*M values, the M diagonal -inf last
  k = int(min(max(round((num_confusing - 1) * num), 0), num * num - 1))
  return desc[k]


def binary_csm(similarity: jnp.ndarray, alpha: float | None = None,
               num_confusing: float | None = 5) -> jnp.ndarray:
  """``C = [S > alpha]`` as float32 ``{0, 1}^{M x M}`` with the diagonal forced to 1 (Eq. 6 needs C - I).

  ``alpha=None`` picks alpha by :func:`alpha_for_num_confusing` (then ``num_confusing`` is required).
  """
  if alpha is None:
    if num_confusing is None:
      raise UserError("csm_num_confusing is None (the top-N rule), which only the staged schedule resolves "
                      "(procedure='u2s_stages' writes N into the later stages' configs); set "
                      "--config.model.csm_num_confusing=N or --config.model.csm_alpha.")
    alpha = alpha_for_num_confusing(similarity, num_confusing)
  c = similarity > alpha
  c = c | jnp.eye(similarity.shape[0], dtype=bool)
  return c.astype(jnp.float32)


def selection_weights(csm: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
  """Mask-combination weights (Fig. 3, right): column ``index`` of the CSM, normalised to sum 1.

  For the binary CSM this averages the masks of the confusing classes of class ``index`` (the positive
  entries of column ``index``; class ``index`` itself is always included). With no confusing class only
  the mask of class ``index`` remains (the "self-attention" degenerate case). For a soft CSM (Table III
  (c)) the weights are the similarities themselves.

  Args:
    csm: ``[M, M]`` binary or soft CSM.
    index: ``[B]`` int class per example (UN's prediction, or the ground truth for the oracle).
  Returns:
    ``[B, M]`` float32, rows sum to 1.
  """
  num = csm.shape[0]
  w = jnp.take(csm.astype(jnp.float32), index, axis=1).T            # [B, M] = column index
  w = jnp.maximum(w, jax.nn.one_hot(index, num, dtype=jnp.float32))
  return w / jnp.sum(w, axis=-1, keepdims=True)


def weight_similarity(kernel: jnp.ndarray, kind: str = "clipped_cosine",
                      eps: float = 1e-12) -> jnp.ndarray:
  """Eq. 4: ``S^w = [s(w_i, w_j)]`` for the columns ``w_i`` of the 1x1x1 conv kernel ``W in R^{C x M}``.

  ``kind``: ``"clipped_cosine"`` = ``max(cos, 0)``, or ``"shifted_cosine"`` = ``(1 + cos) / 2``; both in
  [0, 1] as Eq. 4 requires.
  """
  w = kernel.astype(jnp.float32).reshape(-1, kernel.shape[-1])      # [C, M] (a [1,1,1,C,M] conv too)
  w = w / jnp.maximum(jnp.linalg.norm(w, axis=0, keepdims=True), eps)
  cos = w.T @ w
  if kind == "clipped_cosine":
    return jnp.maximum(cos, 0.0)
  if kind == "shifted_cosine":
    return 0.5 * (1.0 + cos)
  raise UserError(f"Unknown w_similarity {kind!r}; use one of {WEIGHT_SIMILARITIES}.")


def w_regular(kernel: jnp.ndarray, csm: jnp.ndarray, kind: str = "clipped_cosine") -> jnp.ndarray:
  """Eq. 5-6: ``(1 / N_pos) sum_{m_ij = 1} s^w_ij`` with ``M = C - I``; 0 when ``N_pos = 0``.

  ``csm`` is the binary CSM (diagonal 1); it carries no gradient.
  """
  c = jax.lax.stop_gradient(csm.astype(jnp.float32))
  pairs = c * (1.0 - jnp.eye(c.shape[0], dtype=jnp.float32))       # M = C - I
  n_pos = jnp.sum(pairs)
  return jnp.sum(pairs * weight_similarity(kernel, kind)) / jnp.maximum(n_pos, 1.0)
