"""U2S analysis numbers behind the figures of ``vidrec.tools.visualize_u2s`` (paper 003, Sec. IV-C 4-6):
class similarity of features (Eq. 2), the Eq. 7 inter-class similarity, pair ranking and grouping.
Pure numpy (plus ``vidrec.models.csm`` for Eq. 2)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vidrec.errors import UserError
from vidrec.tools import plotting


def class_means(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """Per-class mean of ``features [N, C]`` -> ``(means [M, C] float64, counts [M] int)``; absent classes 0."""
  features = np.asarray(features, np.float64)
  onehot = np.eye(num_classes)[np.asarray(labels)]                     # [N, M]
  counts = onehot.sum(0)
  means = onehot.T @ features / np.maximum(counts, 1)[:, None]
  return means, counts.astype(np.int64)


def feature_similarity_matrix(features: np.ndarray, labels: np.ndarray, num_classes: int,
                              distance: str = "cosine") -> np.ndarray:
  """S of Eq. 2 (``s_ij = 1 - f_dist(mu_i, mu_j)``, ``csm.class_similarity``) on the class means of
  ``features [N, C]``: ``[M, M]`` in [0, 1], unit diagonal; classes without samples get 0 off the diagonal."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidrec.models import csm as csm_lib  # pylint: disable=g-import-not-at-top
  means, counts = class_means(features, labels, num_classes)
  return np.asarray(csm_lib.class_similarity(jnp.asarray(means, jnp.float32), jnp.asarray(counts),
                                             distance), np.float64)


def eq7_similarity(similarity: np.ndarray) -> np.ndarray:
  """Eq. 7 (Sec. IV-C 4): ``s_similarity = Norm(sum_j (S - I)_ij)``, Norm = min-max over the classes.

  The row sum of ``S - I`` is the similarity of class i to every *other* class (the unit self-similarity
  is removed); its min-max normalisation lies in [0, 1]^M (all zeros when every class has the same sum).
  """
  s = np.asarray(similarity, np.float64)
  return plotting.minmax((s - np.eye(s.shape[0])).sum(1))


def mean_inter_class_similarity(similarity: np.ndarray) -> np.ndarray:
  """The un-normalised quantity behind Eq. 7: ``sum_{j != i} s_ij / (M - 1)`` per class."""
  s = np.asarray(similarity, np.float64)
  m = s.shape[0]
  return (s - np.eye(m)).sum(1) / max(m - 1, 1)


def ranked_pairs(similarity: np.ndarray, valid: np.ndarray | None = None) -> list[tuple[int, int, float]]:
  """Off-diagonal class pairs ``(i, j, s)`` with ``i < j``, most similar first (S symmetrised as
  ``(S + S^T) / 2``; ties broken by ``(i, j)``). ``valid [M]`` bool drops classes without statistics."""
  s = np.asarray(similarity, np.float64)
  s = (s + s.T) / 2
  m = s.shape[0]
  ok = np.ones(m, bool) if valid is None else np.asarray(valid, bool)
  pairs = [(i, j, float(s[i, j])) for i in range(m) for j in range(i + 1, m) if ok[i] and ok[j]]
  return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def most_similar_pair(similarity: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int]:
  """The pair ``(i, j)``, ``i < j``, with the highest off-diagonal similarity."""
  pairs = ranked_pairs(similarity, valid)
  if not pairs:
    raise ValueError("no pair of classes with statistics to choose from")
  return pairs[0][:2]


def confusing_groups(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, ...]]:
  """Merges pairs that share a class into groups (connected components), in order of first appearance;
  classes inside a group keep their order of appearance."""
  groups: list[list[int]] = []
  for i, j in pairs:
    hit = [g for g in groups if i in g or j in g]
    merged = [c for g in hit for c in g]
    for c in (i, j):
      if c not in merged:
        merged.append(c)
    first = min((groups.index(g) for g in hit), default=len(groups))
    groups = [g for g in groups if g not in hit]
    groups.insert(min(first, len(groups)), merged)
  return [tuple(g) for g in groups]


def parse_pair(spec: str, class_names: Sequence[str]) -> tuple[int, int]:
  """'3,7' or 'Dropping something,Dropping something so that it breaks' -> class indices."""
  parts = [p.strip() for p in spec.split(",")]
  if len(parts) != 2:
    raise UserError(f"--pair wants two classes 'a,b', got {spec!r}")
  lower = [n.lower() for n in class_names]
  out = []
  for p in parts:
    if p.lstrip("-").isdigit():
      k = int(p)
    elif p.lower() in lower:
      k = lower.index(p.lower())
    else:
      raise UserError(f"--pair: {p!r} is neither a class index nor a class name of {list(class_names)}")
    if not 0 <= k < len(class_names):
      raise UserError(f"--pair: class index {k} out of range [0, {len(class_names)})")
    out.append(k)
  if out[0] == out[1]:
    raise UserError(f"--pair needs two different classes, got {spec!r}")
  return out[0], out[1]


def short_name(name: str) -> str:
  """Paper-style abbreviation ('something' -> 'sth.') for axis labels."""
  return name.replace("something", "sth.").replace("Something", "Sth.")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  keep = np.isfinite(x) & np.isfinite(y)
  x, y = x[keep], y[keep]
  if len(x) < 2 or x.std() == 0 or y.std() == 0:
    return float("nan")
  return float(np.corrcoef(x, y)[0, 1])



def mask_network_stats(labels: np.ndarray, logits_un: np.ndarray, mask_weights: np.ndarray,
                       masks: np.ndarray) -> dict[str, float]:
  """What the mask network did on one view per video (Fig. 3): how many class masks it combined, how
  often the true class was among them (the CSM row of the UN's prediction holds it), also when the UN
  was wrong (the case the CSN is there for), and how much of the normalised mask is below 0.5
  (suppressed under ``mask_norm=multiply``).

  labels [N], logits_un [N, M], mask_weights [N, M] (``u2s`` output), masks [N, ...] (``mask``)."""
  labels = np.asarray(labels)
  selected = np.asarray(mask_weights) > 0
  hit = selected[np.arange(len(labels)), labels]
  un_wrong = np.asarray(logits_un).argmax(-1) != labels
  m = np.asarray(masks, np.float64).reshape(len(labels), -1)
  return {"videos": int(len(labels)), "classes_selected_mean": float(selected.sum(-1).mean()),
          "true_class_selected": float(hit.mean()),
          "un_wrong": int(un_wrong.sum()),
          "true_class_selected_when_un_wrong": float(hit[un_wrong].mean()) if un_wrong.any() else None,
          "mask_mean": float(m.mean()), "mask_fraction_below_half": float((m < 0.5).mean())}
