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
  raw = np.random.default_rng(0).integers(0, 256, size=(2, 4, 4, 3)).astype(np.uint8)
  np.testing.assert_allclose(vis.snippet_images(raw, "rgb"), raw / 255.0, atol=1e-6)
  flow = np.full((2, 4, 4, 10), 128, np.uint8)                # L = 5 fields, x/y interleaved, 128 = still
  flow[1, 0, 0, :2] = (131, 132)                              # |(3, 4)| = 5: the brightest pixel
  flow[0, 1, 1, :2] = (128, 125)                              # |(0, -2.5)| rounds to (0, -3): 3 / 5
  flow[0, 2, 2, 2:] = 200                                     # later fields are not shown
  img = vis.snippet_images(flow, "flow")
  assert img.shape == (2, 4, 4, 3)
  assert img[1, 0, 0, 0] == 1.0 and abs(img[0, 1, 1, 1] - 0.6) < 1e-6 and img[0, 2, 2, 2] == 0.0


def test_render_attention_writes_a_figure(tmp_path):
  images = [np.random.default_rng(i).uniform(size=(8, 6, 6, 3)) for i in range(2)]
  weights = [np.full(8, 1 / 8), np.arange(8) / 28.0]
  path = vis.render_attention(images, weights, ["a", "b"], str(tmp_path / "fig" / "atw.png"), k=4)
  assert (tmp_path / "fig" / "atw.png").stat().st_size > 0 and path.endswith("atw.png")
