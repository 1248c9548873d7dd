"""The actor-attention measure of vidrec.tools.joint_lstm_attention: boxes, cell overlaps, masses."""
import dataclasses

import numpy as np

from vidrec.data import synthetic
from vidrec.tools import joint_lstm_attention as ja


def test_actor_box_contains_every_actor_pixel():
  cfg = next(c for c in synthetic.SyntheticActions.BUILDER_CONFIGS if c.name == "tiny")   # 32 px
  for index in (0, 7, 10):                                       # a move, "breaks" (pieces), appear
    boxes = ja.actor_boxes(cfg, "test", index)
    rng = synthetic.example_rng(cfg.seed, "test", index)
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    scene = synthetic.sample_scene(index % synthetic.NUM_CLASSES, rng, cfg.resolution, num_frames)
    np.testing.assert_array_equal(synthetic.render_scene(scene),
                                  synthetic.generate_example(cfg, "test", index)["video"])
    assert boxes.shape == (num_frames, 5)
    without = dataclasses.replace(scene, objects=[o for o in scene.objects if o is not scene.actor])
    diff = np.abs(synthetic.render_scene(scene).astype(int) - synthetic.render_scene(without)).max(-1) > 0
    t, y, x = np.nonzero(diff)
    assert len(t) > 0
    centre = lambda p: (p + 0.5) / cfg.resolution
    assert ((centre(x) >= boxes[t, 0]) & (centre(x) <= boxes[t, 2])
            & (centre(y) >= boxes[t, 1]) & (centre(y) <= boxes[t, 3])).all()


def test_cell_overlap_by_hand():
  # 2x2 grid; box x in [0.25, 0.75], y in [0, 0.5]: half of cells 0 and 1, nothing of 2 and 3.
  np.testing.assert_allclose(ja.cell_overlap(np.array([0.25, 0.0, 0.75, 0.5]), 2), [0.5, 0.5, 0, 0])
  # 4x4 grid; box over the bottom-right 0.6..1.2 (clipped to the frame): cells (2|3, 2|3) partly/wholly.
  got = ja.cell_overlap(np.array([[0.6, 0.6, 1.2, 1.2]]), 4).reshape(4, 4)
  ref = np.zeros((4, 4))
  ref[2:, 2:] = np.outer([0.6, 1.0], [0.6, 1.0])
  np.testing.assert_allclose(got, ref, atol=1e-12)


def test_uniform_attention_gets_exactly_the_box_share_and_peaked_more():
  rng = np.random.default_rng(0)
  lo = rng.uniform(0, 0.6, size=(50, 2))
  boxes = np.concatenate([lo, lo + rng.uniform(0.1, 0.4, size=(50, 2))], -1)
  overlap = ja.cell_overlap(boxes, 4)
  uniform = np.full((50, 16), 1 / 16)
  mass, share, _, _ = ja.actor_mass(uniform, overlap)
  np.testing.assert_allclose(mass, share)
  peaked = np.eye(16)[overlap.argmax(-1)]                       # all attention on the most-covered cell
  r = ja.summarise(peaked, overlap)
  assert r["argmax_hit"] == 1.0 and r["ratio"] > 2 and r["argmax_chance"] < 1
  np.testing.assert_allclose(ja.summarise(uniform, overlap)["ratio"], 1.0)
