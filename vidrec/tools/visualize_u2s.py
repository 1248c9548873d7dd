"""U2S visualisations (paper 003, Sec. IV-C 4-6): matplotlib PNGs from trained runs.

  python -m vidrec.tools.visualize_u2s --config configs/u2s_sthv2.py:ablation --workdir RUN_DIR \
      [--baseline_workdir ONE_PASS_RUN_DIR] [--noreg_workdir RUN_WITHOUT_REGULARISATION] \
      --out DIR [--split test] [--pair a,b] [--num_pairs 4] [--baseline_variant one_pass] [--dpi 80]

Writes to ``--out``:

1. ``feature_similarity.png`` (Fig. 1 / Fig. 4 (a)): per representation (one-pass ``features_un`` when
   ``--baseline_workdir`` is given, U2S ``features_un``, U2S ``features_csn``, and the U2S model's own CSM
   similarity S from its training statistics) the class-similarity matrix S (top) and the scatter of the
   Eq. 7 inter-class similarity of each class vs the run's per-class accuracy (bottom), points labelled by
   class index with a key of the class names. S is Eq. 2 applied to the class means of the pooled features over the evaluation split
   (:func:`feature_similarity_matrix`), Eq. 7 is :func:`eq7_similarity`.
2. ``weight_similarity.png`` (Fig. 7): S^w of Eq. 4 for the MN 1x1x1 conv kernel
   (``u2s.mask_kernel(params)``, ``csm.weight_similarity``), with regularisation (``--workdir``) and
   without (``--noreg_workdir``, a run trained with ``--config.loss.w_regular_weight=0.0``) side by side,
   dots on the pairs of that run's final binary CSM (the pairs w_regular acts on), and a histogram of the
   off-diagonal values (Fig. 7 (c)).
3. ``pair_masks.png`` (Fig. 5): the most similar pair of classes of the U2S CSM (``csm.class_similarity``
   on the ``u2s_stats`` collection; or ``--pair``), one test video per class (the first one of that class
   the model classifies correctly, else the first one): its frames as the pipeline feeds them
   (un-normalised), and the ``mask`` output upsampled and overlaid; columns = segments.
4. ``pair_accuracy.png`` (Table IV): per-class accuracy of one-pass vs U2S on the confusing groups (the
   ``--num_pairs`` most similar CSM pairs, merged into groups when they share a class), from the
   runs' ``eval/<split>_report.json`` (``per_class_accuracy``; for the first run of each list a missing report
   falls back to the accuracy computed here). ``--workdir`` / ``--baseline_workdir`` accept comma-separated lists (e.g.
   several seeds): the bars are then means with min-max whiskers and the figures 1-3 use the first run.
5. ``summary.json``: every number plotted.

The model runs through the normal evaluation path: ``trainer.setup`` + ``trainer.restore``,
``pipeline.eval_dataset`` over a ``pipeline.VideoSource`` and ``evaluate.collect_view_outputs`` /
``gather_scores`` (views aggregated by ``config.eval.aggregation`` for the scores, averaged for features and
the first view kept for masks). Single process only.

The numbers live in ``vidrec.tools.u2s_analysis``, the plots in ``vidrec.tools.u2s_plots``, the model
runs in ``vidrec.tools.u2s_runs``; this module puts them together (:func:`make_figures`) and is the CLI.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from vidrec.tools.u2s_analysis import (confusing_groups, eq7_similarity, feature_similarity_matrix,
                                       mask_network_stats, mean_inter_class_similarity, most_similar_pair,
                                       parse_pair, pearson, ranked_pairs, short_name)
from vidrec.tools.u2s_plots import (MaskRow, SimilarityPanel, plot_feature_similarity, plot_pair_accuracy,
                                    plot_pair_masks, plot_weight_similarity)
from vidrec.tools import trained
from vidrec.tools.u2s_runs import (csm_of, first_view_frames, report_accuracy, run_split,
                                   weight_similarity_of)


def _baseline_config(config, variant: str):
  c = config.copy_and_resolve_references()
  c.model.variant = variant
  if "procedure" in c:
    c.procedure = "single"             # the one-pass baseline is one run (stage 1 alone)
  return c


def make_figures(config, workdirs: Sequence[str], out: str, *, split: str | None = None,
                 baseline_workdirs: Sequence[str] = (), noreg_workdir: str | None = None,
                 pair: str | None = None, num_pairs: int = 4, baseline_variant: str = "one_pass",
                 dpi: int = 80) -> dict:
  """Writes the PNGs and ``summary.json`` to ``out``; returns the summary."""
  from vidrec import procedures  # pylint: disable=g-import-not-at-top
  from vidrec.data import pipeline  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  split = split or config.dataset.eval_split
  summary: dict[str, Any] = {"split": split, "workdirs": list(workdirs),
                             "baseline_workdirs": list(baseline_workdirs), "noreg_workdir": noreg_workdir}

  config = procedures.eval_config(config, workdirs[0])     # a staged run: its last stage's keys
  s, ts = trained.restore(config, workdirs[0])
  source = pipeline.VideoSource(s.builder, split)
  names = source.class_names
  from vidrec import evaluate, trainer  # pylint: disable=g-import-not-at-top
  probe = evaluate.output_shapes(config, s.model, trainer.variables_of(ts))
  feat_heads = [h for h in ("features_un", "features_csn") if h in probe]
  fv_heads = [h for h in ("mask", "mask_weights", "logits_un") if h in probe]
  run = run_split(config, s, ts, source, feat_heads, fv_heads)
  summary["step"] = int(ts.step)
  summary["per_class_accuracy"] = dict(zip(names, run.accuracy.tolist()))
  distance = config.model.get("csm_distance", "centred_cosine")

  # 1. feature similarity (Eq. 7) vs per-class accuracy
  panels = []
  base_run = None
  if baseline_workdirs:
    bconfig = _baseline_config(config, baseline_variant)
    bs, bts = trained.restore(bconfig, baseline_workdirs[0])
    base_run = run_split(bconfig, bs, bts, source, ["features_un"])
    panels.append(SimilarityPanel(f"one-pass: UN features ({baseline_variant})",
                                  feature_similarity_matrix(base_run.features["features_un"],
                                                            base_run.labels, len(names), distance),
                                  base_run.accuracy))
  titles = {"features_un": "U2S: universal features (features_un)",
            "features_csn": "U2S: specific features (features_csn)"}
  for h in feat_heads:
    panels.append(SimilarityPanel(titles[h], feature_similarity_matrix(run.features[h], run.labels,
                                                                       len(names), distance),
                                  run.accuracy))
  csm = csm_of(run.variables, config.model)
  if csm is not None:
    panels.append(SimilarityPanel("U2S: CSM S (training sparsity stats)", csm[0], run.accuracy))
  plot_feature_similarity(panels, names, os.path.join(out, "feature_similarity.png"), dpi=dpi)
  summary["feature_similarity"] = {
      p.title: {"eq7": dict(zip(names, eq7_similarity(p.similarity).tolist())),
                "mean_inter_class": dict(zip(names, mean_inter_class_similarity(p.similarity).tolist())),
                "accuracy": dict(zip(names, np.asarray(p.accuracy).tolist())),
                "pearson_eq7_accuracy": pearson(eq7_similarity(p.similarity), p.accuracy),
                "matrix": np.asarray(p.similarity).tolist()}
      for p in panels}

  # 2. weight similarity with / without category regularisation
  if csm is not None:
    mats = []
    if noreg_workdir:
      _, nts = trained.restore(config, noreg_workdir)
      nvars = trainer.variables_of(nts)
      ncsm = csm_of(nvars, config.model)
      mats.append(("without category regularisation (lambda = 0)", weight_similarity_of(nvars, config.loss),
                   None if ncsm is None else ncsm[1] - np.eye(len(names))))
    lam = config.loss.get("w_regular_weight", 0.5)
    mats.append((f"with category regularisation (lambda = {lam:g})",
                 weight_similarity_of(run.variables, config.loss), csm[1] - np.eye(len(names))))
    plot_weight_similarity(mats, names, os.path.join(out, "weight_similarity.png"), dpi=dpi)
    off = ~np.eye(len(names), dtype=bool)
    summary["weight_similarity"] = {
        t: {"mean_off_diagonal": float(sw[off].mean()),
            "mean_on_csm_pairs": (None if p is None or not (p > 0).any() else float(sw[p > 0].mean())),
            "matrix": sw.tolist()} for t, sw, p in mats}

  # 3. masks for the most confusing pair
  pair_sim = csm[0] if csm is not None else panels[-1].similarity
  valid = csm[2] > 0 if csm is not None else None
  ranked = ranked_pairs(pair_sim, valid)
  chosen = parse_pair(pair, names) if pair else most_similar_pair(pair_sim, valid)
  summary["pair"] = {"classes": [names[c] for c in chosen], "indices": list(chosen),
                     "source": "--pair" if pair else ("U2S CSM S (u2s_stats)" if csm is not None
                                                      else "feature similarity"),
                     "similarity": float((pair_sim[chosen[0], chosen[1]] + pair_sim[chosen[1], chosen[0]]) / 2)}
  summary["ranked_pairs"] = [[names[i], names[j], v] for i, j, v in ranked[:10]]
  if "mask" in fv_heads:
    order = sorted(run.first_view["mask"])
    summary["mask_network"] = mask_network_stats(
        run.labels[order], *(np.stack([run.first_view[h][v] for v in order])
                             for h in ("logits_un", "mask_weights", "mask")))
    pred = run.scores.argmax(-1)
    picks = []
    for c in chosen:
      vids = np.flatnonzero(run.labels == c)
      right = vids[pred[vids] == c]
      picks.append(int(right[0] if len(right) else vids[0]))
    frames = first_view_frames(config, source, picks)
    rows = []
    for c, v in zip(chosen, picks):
      w = run.first_view["mask_weights"][v]
      sel = ", ".join(short_name(names[k]) for k in np.flatnonzero(w > 0))
      pun = int(run.first_view["logits_un"][v].argmax())
      rows.append(MaskRow(f"video {v}: true '{names[c]}', predicted '{names[int(pred[v])]}'; "
                          f"UN predicted '{short_name(names[pun])}' -> masks of: {sel}",
                          frames[v], run.first_view["mask"][v]))
    plot_pair_masks(rows, os.path.join(out, "pair_masks.png"), dpi=dpi)
    summary["pair"]["videos"] = picks

  # 4. Table IV: one-pass vs U2S on the confusing groups
  if baseline_workdirs:
    pairs = [tuple(chosen)] + [(i, j) for i, j, _ in ranked if {i, j} != set(chosen)]
    groups = confusing_groups(pairs[:max(num_pairs, 1)])
    ours = np.stack([report_accuracy(w, split, names, run.accuracy if k == 0 else None)
                     for k, w in enumerate(workdirs)])
    base = np.stack([report_accuracy(w, split, names, base_run.accuracy if k == 0 else None)
                     for k, w in enumerate(baseline_workdirs)])
    plot_pair_accuracy(groups, names, base, ours, os.path.join(out, "pair_accuracy.png"), dpi=dpi)
    summary["table_iv"] = {
        "groups": [[names[c] for c in g] for g in groups],
        "rows": [{"class": names[c], "one_pass": base[:, c].tolist(), "u2s": ours[:, c].tolist(),
                  "improved": float(np.nanmean(ours[:, c]) - np.nanmean(base[:, c]))}
                 for g in groups for c in g]}
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


# ---------------------------------------------------------------------------------------------- CLI

def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  split_list = lambda v: [w for w in (v or "").split(",") if w]  # noqa: E731
  summary = make_figures(_CONFIG.value, split_list(f.workdir), f.out, split=f.split,
                         baseline_workdirs=split_list(f.baseline_workdir), noreg_workdir=f.noreg_workdir,
                         pair=f.pair, num_pairs=f.num_pairs, baseline_variant=f.baseline_variant,
                         dpi=f.dpi)
  print(f"pair: {summary['pair']['classes']} (S = {summary['pair']['similarity']:.3f})")
  for title, v in summary["feature_similarity"].items():
    print(f"{title}: Pearson(Eq. 7, accuracy) = {v['pearson_eq7_accuracy']:.3f}")
  for name in sorted(os.listdir(f.out)):
    print(os.path.join(f.out, name))


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from vidrec import cli  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the U2S run.", lock_config=True)
  flags.DEFINE_string("workdir", None, "U2S run dir (comma-separated: several runs, e.g. seeds).")
  flags.DEFINE_string("baseline_workdir", None, "One-pass run dir(s), comma-separated.")
  flags.DEFINE_string("noreg_workdir", None, "U2S run trained with --config.loss.w_regular_weight=0.0.")
  flags.DEFINE_string("out", None, "Output directory for the PNGs and summary.json.")
  flags.DEFINE_string("split", None, "Split (default: config.dataset.eval_split).")
  flags.DEFINE_string("pair", None, "Two classes 'a,b' (indices or names) for the mask figure.")
  flags.DEFINE_integer("num_pairs", 4, "Most similar CSM pairs forming the Table IV groups.")
  flags.DEFINE_string("baseline_variant", "one_pass", "model.variant of the baseline run(s).")
  flags.DEFINE_integer("dpi", 80, "PNG resolution.")
  flags.mark_flags_as_required(["config", "workdir", "out"])
  cli.run(main)
