"""vidrec.tools.visualize_atw: Fig. 3's selection of snippets, the display of RGB and flow snippets, and
the figure, on small hand-made arrays (no model, no dataset)."""
import numpy as np

from vidrec.tools import visualize_atw as vis


def test_top_bottom_orders_and_never_overlaps():
  top, bottom = vis.top_bottom(np.array([0.1, 0.4, 0.05, 0.3, 0.15]), 2)
  np.testing.assert_array_equal(top, [1, 3])
  np.testing.assert_array_equal(bottom, [2, 0])
  top, bottom = vis.top_bottom(np.full(6, 1 / 6), 4)            # uniform: k capped at 3, disjoint
  np.testing.assert_array_equal(top, [0, 1, 2])
  np.testing.assert_array_equal(bottom, [3, 4, 5])


def test_snippet_images_rgb_and_flow():
  mean, std = (100.0, 110.0, 120.0), (50.0, 60.0, 70.0)
  raw = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype(np.float32)
  rgb = vis.snippet_images((raw - mean) / np.asarray(std), "rgb", mean, std)
  np.testing.assert_allclose(rgb, raw / 255, atol=1e-5)
  flow = np.zeros((2, 4, 4, 10), np.float32)                   # L = 5 fields, x/y interleaved
  flow[1, 0, 0, :2] = (3.0, 4.0)                              # |(3, 4)| = 5: the brightest pixel
  flow[0, 1, 1, :2] = (0.0, -2.5)                             # half of it
  flow[0, 2, 2, 2:] = 9.0                                     # later fields are not shown
  img = vis.snippet_images(flow, "flow", mean, std)
  assert img.shape == (2, 4, 4, 3)
  assert img[1, 0, 0, 0] == 1.0 and img[0, 1, 1, 1] == 0.5 and img[0, 2, 2, 2] == 0.0


def test_render_attention_writes_a_figure(tmp_path):
  images = [np.random.default_rng(i).uniform(size=(8, 6, 6, 3)) for i in range(2)]
  weights = [np.full(8, 1 / 8), np.arange(8) / 28.0]
  path = vis.render_attention(images, weights, ["a", "b"], str(tmp_path / "fig" / "atw.png"), k=4)
  assert (tmp_path / "fig" / "atw.png").stat().st_size > 0 and path.endswith("atw.png")
