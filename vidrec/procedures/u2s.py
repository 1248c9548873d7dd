"""U2S's three training stages (paper 003, Sec. IV-B "Training"), as the procedure ``u2s_stages``.

  python train.py --config configs/u2s_sthv2.py --workdir W          # config.procedure = "u2s_stages"

"The first training stage is to train the universal network [...]. Assisted by this well-trained
universal network, we obtain the CSM based on the corresponding dataset [...]. The second training stage
is to train the category-specific network with masks provided by the mask network [...]. Finally, we
jointly train the whole network with a relatively low learning rate."

1. ``W/stage1``: the UN alone (``model.variant=one_pass``) for ``stages.steps[0]`` steps, with
   ``config.optimizer`` (and ``config.init_from``, e.g. pretrained weights).
2. ``W/csm``: :func:`csm_pass` runs the stage-1 UN over the whole training split and averages Eq. 1's
   sparsity per class over all samples; N comes from the top-N rule (:func:`resolve_num_confusing`) on
   held-out videos (:func:`held_out_splits`: the dataset's validation split, else the last
   ``stages.held_out`` of the training split, which then no stage trains on). The
   statistics, the stage-1 variables and the CSN's starting Res3D (:func:`csn_top_init`) are written as
   an ``init_from`` directory (``meta.json`` holds N and where ``csn_top`` came from).
3. ``W/stage2``: CSN + MN for ``stages.steps[1]`` steps, initialised from ``W/csm``, the UN (its shared
   Res2D included) frozen by ``optimizer.frozen = stages.frozen``, the statistics frozen
   (``model.csm_frozen``); its final variables go to ``W/stage2/variables``.
4. ``W``: everything jointly at ``stages.joint_lr`` for ``stages.steps[2]`` steps, initialised from
   stage 2. This is the run that ``eval_config`` evaluates.

Every stage is an ordinary trainer run in its own workdir, so re-running the command resumes the stage
that was interrupted and skips the finished ones.
"""
from __future__ import annotations

import json
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidrec import config as config_lib
from vidrec import aggregations, evaluate, fs, init_from, trainer
from vidrec.data import datasets, modalities, pipeline
from vidrec.errors import UserError
from vidrec.models import csm as csm_lib
from vidrec.models import u2s

CSM_DIR = "csm"
STAGE_DIRS = ("stage1", "stage2", "")       # stage 3 trains in the workdir itself
STAGE2_VARIABLES = "stage2/variables"
CSN_INITS = ("un_top", "pretrained")        # stages.csn_init, the default first
AUTO = "auto"                               # stages.top_n_split: choose a held-out split


def held_out_splits(config: ml_collections.ConfigDict, available: Sequence[str]) -> tuple[str, str]:
  """(training split of every stage, split of the top-N rule). The paper's standard ("the top-N accuracy
  ... reaches 85%", Sec. IV-B) reads as a held-out figure: a UN's top-N accuracy on its own training
  videos is inflated, so N would come out too small. ``stages.top_n_split="auto"`` takes the dataset's
  ``validation`` split where ``available`` has one, else holds out the last ``stages.held_out`` (a
  fraction) of the training split: the stages train on ``train[:90%]`` and N is read on ``train[90%:]``.
  Any other value is the split to read N on, the training split unchanged."""
  train, chosen = config.dataset.train_split, config.stages.get("top_n_split", AUTO)
  if chosen != AUTO:
    return train, chosen or train
  if "validation" in available:
    return train, "validation"
  if "[" in train:
    raise UserError(f"stages.top_n_split='auto' would hold out the end of dataset.train_split={train!r}, which "
                    f"is already a slice: name the split to choose N on, e.g. --config.stages.top_n_split="
                    f"'train[90%:]', and keep those videos out of dataset.train_split.")
  keep = round(100 * (1 - config.stages.held_out))
  if not 0 < keep < 100:
    raise UserError(f"stages.held_out={config.stages.held_out} must be a fraction in (0, 1), e.g. 0.1.")
  return f"{train}[:{keep}%]", f"{train}[{keep}%:]"


def with_held_out(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` with :func:`held_out_splits` resolved into ``dataset.train_split`` and
  ``stages.top_n_split`` (the dataset's split names read from its builder)."""
  splits = datasets.load_builder(config.dataset.name, config.dataset.data_dir or None).info.splits
  train, top_n = held_out_splits(config, list(splits.keys()))
  return config_lib.with_overrides(config, {"dataset.train_split": train, "stages.top_n_split": top_n})


def check(config: ml_collections.ConfigDict) -> None:
  """Errors, before anything trains, for configs the staged schedule cannot run."""
  if config.model.name != "u2s":
    raise UserError(f"procedure 'u2s_stages' trains U2S models, not {config.model.name!r}.")
  if config.model.get("variant", "u2s") == "one_pass":
    raise UserError("variant 'one_pass' is the UN alone (stage 1 only): use --config.procedure=single.")
  steps = tuple(config.stages.steps)
  if len(steps) != 3 or min(steps) <= 0:
    raise UserError(f"stages.steps must be three positive step counts (UN, CSN + MN, joint), got {steps}.")
  if config.stages.get("csn_init", CSN_INITS[0]) not in CSN_INITS:
    raise UserError(f"stages.csn_init must be one of {CSN_INITS}, got {config.stages.csn_init!r}.")


def stage_config(config: ml_collections.ConfigDict, stage: int, workdir: str,
                 num_confusing: float | None = None) -> ml_collections.ConfigDict:
  """The trainer config of ``stage`` (1, 2 or 3); stages 2-3 need the resolved ``num_confusing``."""
  st = config.stages
  if stage == 1:
    overrides = {"model.variant": "one_pass", "num_train_steps": st.steps[0], "eval.heads": ("logits",)}
  else:
    overrides = {"model.csm_frozen": True, "model.csm_num_confusing": num_confusing, "init_skip": ""}
    if stage == 2:
      overrides.update({"num_train_steps": st.steps[1], "optimizer.frozen": st.frozen,
                        "init_from": str(fs.path(workdir) / CSM_DIR)})
    else:
      overrides.update({"num_train_steps": st.steps[2], "optimizer.frozen": "", "optimizer.lr": st.joint_lr,
                        "init_from": str(fs.path(workdir) / STAGE2_VARIABLES)})
  return config_lib.with_overrides(config, overrides)


def resolve_num_confusing(config: ml_collections.ConfigDict, scores: np.ndarray,
                          labels: np.ndarray) -> tuple[float, int]:
  """(N used, N of the top-N rule): the config's ``model.csm_num_confusing`` unless it is None, then the
  smallest N whose top-N accuracy of the UN reaches ``stages.top_n_standard`` (Sec. IV-B)."""
  rule = csm_lib.num_confusing_from_top_n(scores, labels, config.stages.top_n_standard)
  fixed = config.model.get("csm_num_confusing")
  return (rule if fixed is None else fixed), rule


def csm_pass(config: ml_collections.ConfigDict, setup: trainer.Setup, ts: trainer.TrainState,
             split: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
  """The CSM statistics of a trained UN over a whole split (Sec. III-A "CSM", Eq. 1).

  Every video of ``split`` is seen once, through the evaluation path with one deterministic view (the
  segment centres, centre crop): "we calculate the average feature sparsity of all the samples under
  each category". Returns ``(u2s_stats, scores [N, M], labels [N])``: the statistics as the model's
  ``u2s_stats`` collection (``class_sparsity`` = the exact per-class mean, ``class_count``, ``updates`` =
  the number of videos) and the UN's scores for the top-N rule.
  """
  one_view = config_lib.with_overrides(config, {"input.test_spatial": "center", "input.test_flip": False})
  source = pipeline.VideoSource(setup.builder, split)
  heads = ("logits", "sparsity")

  @jax.jit
  def apply_fn(variables, video, labels):
    out = setup.model.apply(variables, modalities.model_input(video, one_view.input), train=False,
                            labels=labels)
    return {h: out[h].astype(jnp.float32) for h in heads}

  ds = pipeline.eval_dataset(source, one_view.input, global_batch=one_view.eval.batch_size,
                             process_index=jax.process_index(), process_count=jax.process_count())
  views, labels = evaluate.collect_view_outputs(apply_fn, trainer.variables_of(ts), ds, setup.mesh, heads,
                                                evaluate.blank_batch(one_view))
  n = len(source)
  scores, label_arr, _ = evaluate.gather_scores(views["logits"], labels, n, setup.num_classes,
                                                aggregations.mean_logits)
  channels = next(iter(views["sparsity"].values()))[0].shape[-1]
  xi, _, _ = evaluate.gather_scores(views["sparsity"], labels, n, channels, aggregations.mean_logits)
  m = setup.num_classes
  mean, count = csm_lib.update_class_stats(jnp.zeros((m, channels)), jnp.zeros((m,), jnp.int32),
                                           jnp.asarray(xi, jnp.float32), jnp.asarray(label_arr), None)
  stats = {"class_sparsity": np.asarray(mean), "class_count": np.asarray(count),
           "updates": np.asarray(n, np.int32)}
  return stats, scores, label_arr


def similarity_summary(stats: dict[str, np.ndarray]) -> dict[str, list[float]]:
  """Off-diagonal (min, mean, max) of S (Eq. 2) under every ``csm_distance``: how discriminative each is."""
  off = ~np.eye(len(stats["class_count"]), dtype=bool)
  summary = {}
  for distance in csm_lib.DISTANCES:
    s = np.asarray(csm_lib.class_similarity(jnp.asarray(stats["class_sparsity"]),
                                            jnp.asarray(stats["class_count"]), distance))[off]
    summary[distance] = [float(s.min()), float(s.mean()), float(s.max())]
  return summary


def csn_top_init(config: ml_collections.ConfigDict, stage1: dict) -> tuple[dict, str]:
  """Stage 2's starting ``csn_top`` ({collection: tree}) and where it came from.

  ``stages.csn_init = "un_top"`` (default): the trained stage-1 UN's groups (``stage1`` = its
  variables), i.e. the pretrained Res3D as stage 1 adapted it to the dataset ("The Res2D and Res3D
  weights are initialized with pretrained networks", Sec. IV-B, holds through the UN's initialisation);
  on ``:hard`` from a pre-trained run it gave the CSN head +5.8 points and the fused score +1.2 over
  ``"pretrained"``, on every seed (docs/experiments.md, "Pretrained chains on hard"). ``"pretrained"``:
  the Res3D of ``config.init_from`` itself, its ``csn_top`` (a conversion writes both branches), else
  its ``un_top`` (e.g. a vidrec run of the UN); without pretrained weights, the stage-1 UN's. Either way
  the CSN does not start from random weights at the fine-tuning learning rate.
  """
  if config.stages.get("csn_init", CSN_INITS[0]) == "pretrained" and config.init_from:
    checkpoint, _ = init_from.load_variables(config.init_from)
    for name in ("csn_top", "un_top"):
      if name in checkpoint.get("params", {}):
        return ({c: tree[name] for c, tree in checkpoint.items() if name in tree},
                f"{config.init_from} ({name})")
  return {c: tree["un_top"] for c, tree in stage1.items() if "un_top" in tree}, "stage 1 (un_top)"


def _write_csm(config: ml_collections.ConfigDict, workdir: str, ts: trainer.TrainState) -> None:
  """Stage 1 -> the CSM directory (skipped when it exists: a resumed schedule)."""
  out = fs.path(workdir) / CSM_DIR
  if (out / init_from.META_FILE).exists():
    return
  setup = trainer.setup(config)
  stats, scores, labels = csm_pass(config, setup, ts, config.dataset.train_split)
  if config.stages.top_n_split != config.dataset.train_split:
    _, scores, labels = csm_pass(config, setup, ts, config.stages.top_n_split)
  used, rule = resolve_num_confusing(config, scores, labels)
  meta = {"num_confusing": used, "top_n_rule": rule, "top_n_standard": config.stages.top_n_standard,
          "top_n_split": config.stages.top_n_split, "train_split": config.dataset.train_split,
          "similarity_offdiag_min_mean_max": similarity_summary(stats),
          "source": str(fs.path(workdir) / STAGE_DIRS[0])}
  variables = {"params": dict(ts.params), **{c: dict(tree) for c, tree in ts.model_state.items()}}
  top, meta["csn_top"] = csn_top_init(config, variables)
  for collection, tree in top.items():
    variables.setdefault(collection, {})["csn_top"] = tree
  variables[u2s.STATS_COLLECTION] = stats
  init_from.save_variables(str(out), variables, meta)
  print(f"u2s_stages: CSM from {int(stats['updates'])} training videos; N = {used} (top-N rule: {rule} at "
        f"{config.stages.top_n_standard:.0%}); off-diagonal S (min, mean, max): "
        f"{meta['similarity_offdiag_min_mean_max']}; csn_top from {meta['csn_top']}", flush=True)


def num_confusing_of(workdir: str) -> float:
  """The N that the CSM pass of ``workdir`` chose (``W/csm/meta.json``)."""
  path = fs.path(workdir) / CSM_DIR / init_from.META_FILE
  if not path.exists():
    raise UserError(f"{path} is missing: the staged schedule has not reached its CSM pass in {workdir}; "
                    f"train it first (python train.py --config ... --workdir {workdir}).")
  return json.loads(path.read_text())["num_confusing"]


def eval_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """The config of the final (joint) stage, which the workdir's own checkpoints hold."""
  return stage_config(config, 3, workdir, num_confusing_of(workdir))


def stages(config: ml_collections.ConfigDict, workdir: str) -> list[tuple[str, str, ml_collections.ConfigDict]]:
  """(what, workdir, trainer config) of each stage, for ``train.py --dry_run``. N: the config's, or 1 where
  the CSM pass will choose it (the top-N rule); N does not change any variable."""
  n = config.model.get("csm_num_confusing") or 1
  root = fs.path(workdir)
  return [("1: UN alone", str(root / STAGE_DIRS[0]), stage_config(config, 1, workdir)),
          (f"CSM pass over {config.dataset.train_split} (csn_top: stages.csn_init="
           f"{config.stages.get('csn_init', CSN_INITS[0])})", str(root / CSM_DIR), None),
          ("2: CSN + MN, UN frozen", str(root / STAGE_DIRS[1]), stage_config(config, 2, workdir, n)),
          ("3: joint", str(root), stage_config(config, 3, workdir, n))]


def train(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> None:
  """Runs (or resumes) the three stages and the CSM pass between stages 1 and 2."""
  check(config)
  config = with_held_out(config)
  root = fs.path(workdir)
  ts = trainer.train(stage_config(config, 1, workdir), str(root / STAGE_DIRS[0]), allow_config_change)
  _write_csm(stage_config(config, 1, workdir), workdir, ts)
  n = num_confusing_of(workdir)
  ts = trainer.train(stage_config(config, 2, workdir, n), str(root / STAGE_DIRS[1]), allow_config_change)
  if not (root / STAGE2_VARIABLES / init_from.META_FILE).exists():
    init_from.save_variables(str(root / STAGE2_VARIABLES), trainer.variables_of(ts),
                             {"source": str(root / STAGE_DIRS[1]), "num_confusing": n})
  trainer.train(stage_config(config, 3, workdir, n), workdir, allow_config_change)
