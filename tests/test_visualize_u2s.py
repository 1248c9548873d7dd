"""Tests for vidrec.tools.visualize_u2s (u2s_analysis, u2s_plots, u2s_runs): Eq. 7 against a direct numpy computation, pair selection / groups, and the
plotting functions on small synthetic arrays (no model, no dataset: a few seconds)."""
from __future__ import annotations

import numpy as np
import pytest

from vidrec.tools import plotting
from vidrec.tools import u2s_analysis as ana
from vidrec.tools import u2s_plots as plots
from vidrec.tools import u2s_runs as runs

NAMES = ["Moving something up", "Moving something down", "Dropping something",
         "Dropping something so that it breaks"]


def _hand_made():
  """Three classes with hand-made non-negative features; classes 0 and 1 point the same way."""
  features = np.array([[1, 0, 0], [3, 0, 0],          # class 0: mean (2, 0, 0)
                       [1, 1, 0], [1, 1, 0],          # class 1: mean (1, 1, 0)
                       [0, 0, 2], [0, 1, 2]], float)  # class 2: mean (0, 0.5, 2)
  labels = np.array([0, 0, 1, 1, 2, 2])
  return features, labels


def test_class_means():
  features, labels = _hand_made()
  means, counts = ana.class_means(features, labels, 4)
  np.testing.assert_allclose(means, [[2, 0, 0], [1, 1, 0], [0, 0.5, 2], [0, 0, 0]])
  np.testing.assert_array_equal(counts, [2, 2, 2, 0])


def test_eq7_against_direct_numpy():
  features, labels = _hand_made()
  sim = ana.feature_similarity_matrix(features, labels, 3, "cosine")
  # Direct: cosine of the class means (Eq. 2 with f_dist = 1 - cos), then Eq. 7 by explicit loops.
  mu = [features[labels == c].mean(0) for c in range(3)]
  direct = np.array([[mu[i] @ mu[j] / np.linalg.norm(mu[i]) / np.linalg.norm(mu[j]) for j in range(3)]
                     for i in range(3)])
  np.testing.assert_allclose(sim, direct, atol=1e-6)
  row = np.array([sum(direct[i, j] for j in range(3) if j != i) for i in range(3)])  # sum_j (S - I)_ij
  expected = (row - row.min()) / (row.max() - row.min())                              # Norm = min-max
  np.testing.assert_allclose(ana.eq7_similarity(sim), expected, atol=1e-6)
  # Class 1 (between 0 and 2) is the most similar to the others, class 2 the least.
  assert ana.eq7_similarity(sim).argmax() == 1 and ana.eq7_similarity(sim).argmin() == 2
  np.testing.assert_allclose(ana.mean_inter_class_similarity(direct), row / 2, atol=1e-12)


def test_eq7_on_given_matrix_and_constant_rows():
  s = np.array([[1.0, 0.2, 0.6], [0.2, 1.0, 0.1], [0.6, 0.1, 1.0]])
  np.testing.assert_allclose(ana.eq7_similarity(s), [1.0, 0.0, (0.7 - 0.3) / (0.8 - 0.3)])
  np.testing.assert_array_equal(ana.eq7_similarity(np.eye(3)), np.zeros(3))  # all equal: zeros


def test_l1_distance_and_absent_class():
  features, labels = _hand_made()
  sim = ana.feature_similarity_matrix(features / 4, labels, 4, "l1")
  mu = np.stack([features[labels == c].mean(0) / 4 for c in range(3)])
  np.testing.assert_allclose(sim[:3, :3], 1 - np.abs(mu[:, None] - mu[None]).mean(-1), atol=1e-6)
  np.testing.assert_array_equal(sim[3, :3], 0)       # class 3 has no sample
  assert sim[3, 3] == 1


def test_pair_selection_and_ranking():
  s = np.array([[1.0, 0.3, 0.9, 0.1],
                [0.3, 1.0, 0.2, 0.8],
                [0.7, 0.2, 1.0, 0.4],                 # asymmetric (0, 2): symmetrised to 0.8
                [0.1, 0.8, 0.4, 1.0]])
  ranked = ana.ranked_pairs(s)
  assert [p[:2] for p in ranked[:3]] == [(0, 2), (1, 3), (2, 3)]   # 0.8 tie broken by (i, j)
  assert ranked[0][2] == pytest.approx(0.8)
  assert ana.most_similar_pair(s) == (0, 2)
  assert ana.most_similar_pair(s, valid=np.array([True, True, False, True])) == (1, 3)
  assert ana.most_similar_pair(np.eye(3) + 0.5 * (np.arange(9).reshape(3, 3) == 5)) == (1, 2)  # s_12 only
  with pytest.raises(ValueError):
    ana.most_similar_pair(s, valid=np.array([True, False, False, False]))


def test_mask_network_stats_by_hand():
  labels = np.array([0, 1, 2, 1])
  logits_un = np.array([[5, 0, 0], [3, 1, 0], [0, 0, 4], [0, 0, 2.0]])   # UN wrong on videos 1 and 3
  weights = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1.0]])      # true class in 0, 2, 3
  masks = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1], [0.5, 0.3]])
  st = ana.mask_network_stats(labels, logits_un, weights, masks)
  assert st["videos"] == 4 and st["un_wrong"] == 2
  assert st["classes_selected_mean"] == pytest.approx((2 + 1 + 1 + 2) / 4)
  assert st["true_class_selected"] == pytest.approx(3 / 4)
  assert st["true_class_selected_when_un_wrong"] == pytest.approx(1 / 2)
  assert st["mask_mean"] == pytest.approx(3.8 / 8)
  assert st["mask_fraction_below_half"] == pytest.approx(4 / 8)


def test_confusing_groups_merge_shared_classes():
  assert ana.confusing_groups([(6, 7), (0, 1), (1, 4), (8, 9)]) == [(6, 7), (0, 1, 4), (8, 9)]
  assert ana.confusing_groups([(0, 1), (2, 3), (1, 2)]) == [(0, 1, 2, 3)]
  assert ana.confusing_groups([]) == []


def test_parse_pair():
  assert ana.parse_pair("2,3", NAMES) == (2, 3)
  assert ana.parse_pair("dropping something, Dropping something so that it breaks", NAMES) == (2, 3)
  for bad in ("1", "1,1", "0,9", "0,Jumping"):
    with pytest.raises(ValueError):
      ana.parse_pair(bad, NAMES)


def test_upsample():
  mask = np.arange(8, dtype=float).reshape(2, 2, 2, 1)
  up = plotting.upsample_map(mask[..., 0], 4, 4, 4)
  assert up.shape == (4, 4, 4)
  np.testing.assert_allclose(up[0], up[1])                 # nearest in time: t * 2 // 4
  np.testing.assert_allclose(up[0, 0, 0], 0.0)             # corners keep the source values
  np.testing.assert_allclose(up[3, 3, 3], 7.0)
  np.testing.assert_allclose(up[0].mean(), mask[0].mean())  # symmetric bilinear keeps the mean here


def _is_png(path) -> bool:
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path):
  rng = np.random.default_rng(0)
  m = len(NAMES)
  sim = rng.uniform(0, 1, (m, m))
  sim = (sim + sim.T) / 2
  np.fill_diagonal(sim, 1)
  acc = np.array([1.0, 0.9, 0.75, np.nan])
  paths = [
      plots.plot_feature_similarity([plots.SimilarityPanel("a", sim, acc),
                                     plots.SimilarityPanel("b", np.eye(m), acc)], NAMES, str(tmp_path / "fs.png")),
      plots.plot_weight_similarity([("no reg", sim, None), ("reg", sim * 0.5, np.eye(m)[::-1])], NAMES,
                                   str(tmp_path / "w.png")),
      plots.plot_pair_masks([plots.MaskRow("video 0", rng.integers(0, 255, (4, 16, 16, 3), np.uint8),
                                           rng.uniform(0, 1, (4, 2, 2, 1))),
                             plots.MaskRow("video 1", rng.integers(0, 255, (3, 16, 16, 3), np.uint8),
                                           rng.uniform(0, 1, (3, 2, 2)))], str(tmp_path / "sub" / "m.png")),
      plots.plot_pair_accuracy([(2, 3), (0, 1)], NAMES, rng.uniform(0, 1, (3, m)), rng.uniform(0, 1, (3, m)),
                               str(tmp_path / "acc.png")),
      plots.plot_pair_accuracy([(2, 3)], NAMES, acc, acc, str(tmp_path / "acc1.png")),
  ]
  for p in paths:
    assert _is_png(p)


def test_first_view_frames_through_the_eval_pipeline(data_dir):
  """The subset source yields exactly the eval pipeline's first views of the chosen videos, un-normalised."""
  import importlib.util
  import pathlib
  from vidrec.data import datasets, pipeline
  spec = importlib.util.spec_from_file_location(
      "u2s_sthv2", pathlib.Path(__file__).parents[1] / "configs" / "u2s_sthv2.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("ablation")
  config.dataset.update(name="synthetic_actions/tiny", data_dir=data_dir)
  config.input.update(resize=(32,), crop=32)
  source = pipeline.VideoSource(datasets.load_builder(config.dataset.name, data_dir), "test")
  frames = runs.first_view_frames(config, source, [3, 1])
  assert sorted(frames) == [1, 3]
  full = {}
  for batch in pipeline.eval_dataset(source, config.input, global_batch=8).as_numpy_iterator():
    for row in range(len(batch["label"])):
      if batch["view_index"][row] == 0 and batch["video_index"][row] in (1, 3):
        full[int(batch["video_index"][row])] = batch["video"][row]
  for v in (1, 3):
    assert frames[v].shape == (8, 32, 32, 3) and frames[v].dtype == np.uint8
    np.testing.assert_array_equal(frames[v], full[v])
    assert frames[v].std() > 5          # real pictures, not a constant
