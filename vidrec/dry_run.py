"""``python train.py --config ... --workdir W --dry_run``: check a run before it spends GPU-days.

Builds everything a run builds except the compiled step (parameters via ``jax.eval_shape``, nothing
computed) and prints: the resolved config's differences from ``base_config``, the weights it would start
from (or why it refuses), the dataset (splits, videos, classes) or its prepare command, the parameter
count per top-level module, the init table (loaded / adapted / re-initialised / fresh per module) and the
procedure's stages. Returns 0 when the run would start and 2 (``cli.EXIT_USER_ERROR``) when it would not,
after printing every reason.
"""
from __future__ import annotations

import jax
import ml_collections
import numpy as np

from vidrec import cli, init_from, optim, pretrained, procedures, run_record, trainer
from vidrec import config as config_lib
from vidrec.data import datasets
from vidrec.data.features import FILE_FORMAT
from vidrec.errors import UserError
from vidrec.models import build_model, layers
from vidrec.param_paths import flatten, parse_patterns

# Published class counts, to size the model of a dataset that is not prepared yet.
PUBLISHED_CLASSES = {"ucf101": 101, "hmdb51": 51, "ssv2": 174, "penn_action": 15}
PLACEHOLDER_CLASSES = 12


def config_changes(config: ml_collections.ConfigDict) -> list[str]:
  """``key: base -> value`` for every key where ``config`` differs from ``base_config``."""
  base = run_record.flatten(run_record.config_as_json(config_lib.base_config()))
  new = run_record.flatten(run_record.config_as_json(config))
  return [f"{k}: {base.get(k, '(not in base)')!r} -> {new.get(k, '(removed)')!r}"
          for k in sorted(set(base) | set(new)) if base.get(k) != new.get(k)]


def dataset_summary(config: ml_collections.ConfigDict) -> tuple[list[str], int | None, str | None]:
  """(lines, number of classes, the problem if the run could not read it)."""
  base, variant = datasets.split_name(config.dataset.name)
  data_dir = config.dataset.data_dir or datasets.default_data_dir()
  spec = datasets.DATASETS.get(base)
  builder = spec.builder_class()(config=variant, data_dir=data_dir, file_format=FILE_FORMAT)
  if builder.is_prepared():
    splits = {name: split.num_examples for name, split in builder.info.splits.items()}
    classes = builder.info.features["label"].num_classes
    return [f"{config.dataset.name} in {data_dir}: {classes} classes, videos per split {splits}"], classes, None
  if spec.auto_prepare:
    return [f"{config.dataset.name}: built-in, prepared in {data_dir} on first use"], None, None
  try:
    datasets.load_builder(config.dataset.name, data_dir)
  except UserError as e:
    return [str(e)], PUBLISHED_CLASSES.get(base), f"dataset {config.dataset.name} is not prepared"
  raise AssertionError("unreachable: an unprepared dataset that load_builder accepts")


def parameter_lines(params) -> list[str]:
  counts: dict[str, int] = {}
  for name, leaf in flatten(params).items():
    counts[name.split("/")[0]] = counts.get(name.split("/")[0], 0) + int(np.prod(leaf.shape))
  width = max(len(m) for m in counts)
  return [f"{m.ljust(width)}  {n:,}" for m, n in counts.items()] + [f"{'total'.ljust(width)}  {sum(counts.values()):,}"]


def run(config: ml_collections.ConfigDict, workdir: str) -> int:
  """Prints the dry run of ``config`` in ``workdir``; returns the exit status (0 would start, 2 not)."""
  problems: list[str] = []
  section = lambda title: print(f"\n== {title} ==", flush=True)  # noqa: E731
  section("config: differences from base_config")
  print("\n".join(config_changes(config)) or "none")

  section("weights")
  try:
    config = pretrained.resolve(config)
    source = config.get("pretrained", "")
    print(f"pretrained: {source or 'none declared'}" +
          (f" ({pretrained.SOURCES.get(source).file})" if source else "") +
          f"; init_from: {config.init_from or 'none (random initialisation)'}" +
          ("; from_scratch" if config.get("from_scratch", False) else ""))
  except UserError as e:
    problems.append(str(e))
    print(f"REFUSED: {e}")

  section("dataset")
  lines, num_classes, problem = dataset_summary(config)
  print("\n".join(lines))
  if problem:
    problems.append(problem)
  if num_classes is None:
    num_classes = PLACEHOLDER_CLASSES
    print(f"(model sized for {num_classes} classes, a placeholder, until the dataset is prepared)")

  stages = procedures.get(config).stages(config, workdir)
  final = [stage for _, _, stage in stages if stage is not None][-1]
  section("model (of the last stage): parameters per top-level module")
  try:
    config_lib.validate(config)
    model = build_model(final.model, num_classes)
    tx, _ = optim.make_optimizer(config.optimizer, config.num_train_steps)
    with layers.using_conv_impl("native"):    # shapes only: no per-shape convolution measurements
      abstract = jax.eval_shape(lambda r: trainer.init_state(model, tx, config, r), jax.random.key(0))
  except (UserError, ValueError) as e:
    problems.append(str(e))
    print(f"cannot build: {e}")
    abstract = None
  if abstract is not None:
    print("\n".join(parameter_lines(abstract.params)))
    section("init")
    if config.init_from and pretrained.has_weights(config.init_from):
      try:
        checkpoint, meta = init_from.load_variables(config.init_from)
        plan = init_from.make_plan(checkpoint, {"params": abstract.params, **abstract.model_state},
                                   f"{config.init_from} ({meta.get('arch', 'vidrec')})",
                                   parse_patterns(config.init_skip), config.init_adapt, config.init_prefix)
        init_from.check_partial_bn(config, plan)
        print(plan.table())
      except (UserError, ValueError) as e:
        problems.append(str(e))
        print(f"cannot initialise: {e}")
    elif config.init_from:
      print(f"init_from {config.init_from}: no weights there yet (see weights)")
    else:
      print("every variable fresh (no pretrained weights)")

  section(f"procedure {config.get('procedure', 'single')}: stages")
  for what, stage_dir, stage in stages:
    if stage is None:
      print(f"{what}: {stage_dir}")
    else:
      print(f"{what}: {stage_dir}, {stage.num_train_steps} steps, frozen {stage.optimizer.frozen or 'nothing'}, "
            f"init_from {stage.init_from or 'none'}")

  section("verdict")
  if problems:
    print(f"would NOT start ({len(problems)} problem(s); each is printed above)")
    return cli.EXIT_USER_ERROR
  print("would start")
  return 0
