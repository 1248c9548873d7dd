"""Aggregation rules and video-level metrics against hand-computed expectations."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import resnet3d_ucf101, u2s_sthv2
from vidrec import aggregations, evaluate, trainer
from vidrec.errors import UserError
from vidrec.models import build_model

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


class _Heads(nn.Module):
  """Stand-in model with three logits* heads and a feature output."""

  @nn.compact
  def __call__(self, video, *, train=False, labels=None):
    x = video.mean(axis=(1, 2, 3, 4))[:, None]
    return {"logits_un": x, "features": x, "logits": x, "logits_csn": x}


def test_eval_heads_empty_means_every_logits_head_logits_first():
  config = resnet3d_ucf101.get_config("synthetic")
  config.eval.heads = ()
  assert evaluate.eval_heads(config, _Heads(), {}) == ("logits", "logits_csn", "logits_un")


def test_eval_heads_missing_head_names_the_outputs():
  config = resnet3d_ucf101.get_config("synthetic")
  config.eval.heads = ("logits", "logits_mn")
  with pytest.raises(UserError, match=r"\['logits_mn'\] are not outputs.*logits_csn"):
    evaluate.eval_heads(config, _Heads(), {})


@pytest.mark.parametrize("variant,expected", [
    ("u2s", ("logits", "logits_csn", "logits_mn", "logits_un")),
    ("no_mn", ("logits", "logits_csn", "logits_un")),
    ("one_pass", ("logits", "logits_un"))])
def test_u2s_default_heads_follow_the_variant(variant, expected):
  config = u2s_sthv2.get_config("synthetic")
  config.model.update(variant=variant, csm_num_confusing=3)     # N as the staged schedule sets it
  model = build_model(config.model, 24)
  video = jnp.zeros(trainer.input_shape(config, 1, test=True))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), video, train=False))
  assert evaluate.eval_heads(config, model, variables) == expected
