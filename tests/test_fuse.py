"""Late fusion (SGN + Frame) against hand-computed scores, and the score files eval.py writes."""
import numpy as np
import pytest

from vidrec.tools import fuse


def test_fuse_scores_hand_computed():
  sgn = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
  frame = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
  fused = fuse.fuse_scores({"sgn": sgn, "frame": frame}, {"sgn": 1.0, "frame": 0.5})
  np.testing.assert_allclose(fused, [[0.65, 0.7, 0.15], [0.25, 0.55, 0.7]])
  assert list(fused.argmax(1)) == [1, 2]      # fusion flips both decisions of SGN alone
  with pytest.raises(KeyError, match="no scores"):
    fuse.fuse_scores({"sgn": sgn}, {"rgb": 1.0})
  with pytest.raises(ValueError, match="same shape"):
    fuse.fuse_scores({"a": sgn, "b": frame[:1]}, {"a": 1.0, "b": 1.0})


def test_fuse_files(tmp_path):
  labels, names = np.array([1, 2]), np.array(["a", "b", "c"])
  np.savez(tmp_path / "sgn.npz", labels=labels, class_names=names, logits=[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
  np.savez(tmp_path / "frame.npz", labels=labels, class_names=names, logits=[[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
  fused, got_labels, got_names = fuse.fuse_files([f"{tmp_path}/sgn.npz", f"{tmp_path}/frame.npz:logits:0.5"])
  np.testing.assert_allclose(fused, [[0.65, 0.7, 0.15], [0.25, 0.55, 0.7]])
  assert list(got_labels) == [1, 2] and got_names == ["a", "b", "c"]
  np.savez(tmp_path / "other.npz", labels=np.array([0, 0]), class_names=names, logits=np.zeros((2, 3)))
  with pytest.raises(ValueError, match="same split"):
    fuse.fuse_files([f"{tmp_path}/sgn.npz", f"{tmp_path}/other.npz"])
