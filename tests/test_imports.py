"""No import circle among vidrec's modules: every ``import vidrec...`` in a module counts, at the top or
inside a function (a deferred import hides a circle from Python, not from a reader)."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def import_graph(root: pathlib.Path = ROOT, package: str = "vidrec") -> dict[str, set[str]]:
  """{module: the package modules it imports}; ``from a import b`` points at ``a.b`` when that is a module."""
  paths = {}
  for path in (root / package).rglob("*.py"):
    parts = path.relative_to(root).with_suffix("").parts
    paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  graph: dict[str, set[str]] = {}
  for name, path in paths.items():
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        targets.update(a.name for a in node.names)
      elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                       for a in node.names)
    graph[name] = {t for t in targets if t in paths and t != name}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import circle as [m0, m1, ..., m0], or None (depth-first search)."""
  state: dict[str, int] = {}          # 1: on the current path, 2: done
  path: list[str] = []

  def visit(node: str) -> list[str] | None:
    state[node] = 1
    path.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      if nxt not in state and (cycle := visit(nxt)):
        return cycle
    state[node] = 2
    path.pop()
    return None

  for start in sorted(graph):
    if start not in state and (cycle := visit(start)):
      return cycle
  return None


def test_find_cycle_on_hand_made_graphs():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_deferred_imports():
  graph = import_graph()
  assert "vidrec.trainer" in graph["vidrec.evaluate"]         # imported inside evaluate()
  assert "vidrec.aggregations" in graph["vidrec.config"]      # imported inside validate()
  assert "vidrec.models.resnet2d" in graph["vidrec.models.sgn"]   # from vidrec.models import resnet2d


def test_no_import_circle_among_vidrec_modules():
  cycle = find_cycle(import_graph())
  assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_library_modules_do_not_import_the_tools():
  graph = import_graph()
  upward = {m: sorted(t for t in targets if t.startswith("vidrec.tools"))
            for m, targets in graph.items() if not m.startswith("vidrec.tools")}
  assert not {m: t for m, t in upward.items() if t}
