"""Aggregation rules and video-level metrics against hand-computed expectations."""
import numpy as np
import pytest

from vidrec import aggregations, evaluate

# Three views of one video over 3 classes.
LOGITS = np.log(np.array([[0.7, 0.2, 0.1],
                          [0.1, 0.6, 0.3],
                          [0.2, 0.5, 0.3]]))


def test_mean_softmax():
  np.testing.assert_allclose(aggregations.AGGREGATIONS.get("mean_softmax")(LOGITS), [1.0 / 3, 1.3 / 3, 0.7 / 3])


def test_mean_logits():
  np.testing.assert_allclose(aggregations.AGGREGATIONS.get("mean_logits")(LOGITS), LOGITS.mean(0))
  assert aggregations.AGGREGATIONS.get("mean_logits")(LOGITS).argmax() == 1


def test_max():
  np.testing.assert_allclose(aggregations.AGGREGATIONS.get("max")(LOGITS), [0.7, 0.6, 0.3])


def test_majority_vote():
  scores = aggregations.AGGREGATIONS.get("majority_vote")(LOGITS)
  # votes: class 0 once, class 1 twice -> class 1 wins although view 0 is the most confident.
  np.testing.assert_allclose(scores, [1 + 1.0 / 3, 2 + 1.3 / 3, 0 + 0.7 / 3])
  # A tie (one vote each) is broken by the mean softmax.
  tie = np.log(np.array([[0.5, 0.4, 0.1], [0.05, 0.9, 0.05]]))
  assert aggregations.AGGREGATIONS.get("majority_vote")(tie).argmax() == 1


def test_unknown_rule_names_the_known_ones():
  with pytest.raises(KeyError, match="majority_vote"):
    aggregations.AGGREGATIONS.get("median")


def test_video_metrics():
  scores = np.array([[0.9, 0.1, 0.0],    # label 0, correct
                     [0.2, 0.3, 0.5],    # label 0, rank 2 (wrong)
                     [0.1, 0.8, 0.1],    # label 1, correct
                     [0.6, 0.1, 0.3]])   # label 2, rank 1 (wrong)
  labels = np.array([0, 0, 1, 2])
  m = evaluate.video_metrics(scores, labels, ["a", "b", "c"])
  assert m["top1"] == 0.5
  assert m["top5"] == 1.0
  assert m["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
  assert m["mean_class_accuracy"] == pytest.approx(0.5)
  assert m["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
