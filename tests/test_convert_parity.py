"""Logit parity against torchvision itself (skipped without torch + torchvision: pip install 'vidrec[torch]').

Random-weight models (BatchNorm statistics randomised too) saved to .pth, converted, compared on inputs of
odd sizes; the figures at standard sizes are in docs/pretrained.md (python -m vidrec.convert parity)."""
import json
import os

import pytest

try:
  from vidrec.convert import parity
except ModuleNotFoundError as e:
  if e.name not in ("torch", "torchvision"):
    raise
  pytest.skip("needs torch + torchvision: pip install 'vidrec[torch]'", allow_module_level=True)
torchvision = parity.torchvision

SHAPES_FILE = os.path.join(os.path.dirname(__file__), "data", "torchvision_state_dict_shapes.json")


@pytest.mark.parametrize("arch,shape", [("r3d_18", (2, 5, 37, 45)), ("r2plus1d_18", (1, 6, 33, 40)),
                                        ("mc3_18", (2, 5, 37, 45)), ("vgg16", (1, 45, 37)),
                                        ("resnet18", (2, 45, 37)), ("resnet50", (1, 33, 50)),
                                        ("u2s_resnet50", (1, 33, 50)), ("vggm", (1, 204, 211)),
                                        ("tsm_resnet50", (1, 8, 33, 50))])   # TSM's 8 segments, shift on
def test_logits_match_torchvision(arch, shape):
  result = parity.parity(arch, shape, seed=1)
  assert result["max_rel"] < 1e-4, result


def test_shape_table_matches_installed_torchvision():
  table = json.load(open(SHAPES_FILE))
  for arch, shapes in table.items():   # torchvision's own architectures (u2s_resnet50 reads resnet50's)
    namespace = torchvision.models.video if parity.ARCHS.get(arch).video else torchvision.models
    state = getattr(namespace, arch)(weights=None).state_dict()
    assert {k: list(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")} == shapes
