"""docs/design.md's module map agrees with the package: every module listed once, the
leaves import only leaves, no import cycle, every module of a size one can read."""

import ast
import os
import re

import pytest

from conftest import REPO

PACKAGE = os.path.join(REPO, 'vae_jax')
MAX_LINES = 320  # "≈ 50–300 lines a module" (docs/design.md), with a little slack


def _modules() -> dict:
  """{dotted name relative to vae_jax ('models.vae', 'data' for data/__init__): path}."""
  found = {}
  for root, _, files in os.walk(PACKAGE):
    for name in files:
      if not name.endswith('.py'):
        continue
      path = os.path.join(root, name)
      parts = os.path.relpath(path, PACKAGE)[:-3].split(os.sep)
      if parts[-1] == '__init__':
        parts = parts[:-1]
      if parts:  # vae_jax/__init__.py itself is the package's front door
        found['.'.join(parts)] = path
  return found


def _imports(path: str, modules: dict, top_level_only: bool = False) -> set:
  """The vae_jax modules a module imports (anywhere in it, or at its top level)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  nodes = tree.body if top_level_only else ast.walk(tree)
  targets = set()
  for node in nodes:
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module == 'vae_jax' or node.module.startswith('vae_jax.')):
      base = node.module[len('vae_jax.'):] if node.module != 'vae_jax' else ''
      for alias in node.names:
        full = f'{base}.{alias.name}' if base else alias.name
        targets.add(full if full in modules else base)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.startswith('vae_jax.'):
          targets.add(alias.name[len('vae_jax.'):])
  return {t for t in targets if t}


def _design_map() -> dict:
  """{module: the design.md section it is listed under} from the tables of '## Modules'."""
  with open(os.path.join(REPO, 'docs', 'design.md')) as f:
    text = f.read()
  section = text.split('## Modules', 1)[1].split('\n## ', 1)[0]
  listed, heading = {}, None
  for line in section.splitlines():
    if line.startswith('### '):
      heading = line[4:].strip().split()[0].lower()
    elif line.startswith('| `'):
      for name in re.findall(r'`([\w.]+)`', line.split('|')[1]):
        assert name not in listed, f'{name} is listed twice in docs/design.md'
        listed[name] = heading
  return listed


@pytest.fixture(name='modules', scope='module')
def modules_fixture():
  return _modules()


def test_design_map_lists_every_module_once(modules):
  listed = _design_map()
  assert sorted(set(modules) - set(listed)) == [], 'modules missing from docs/design.md'
  assert sorted(set(listed) - set(modules)) == [], 'docs/design.md lists modules that do not exist'


def test_leaves_import_only_leaves(modules):
  listed = _design_map()
  leaves = {m for m, kind in listed.items() if kind == 'leaves'}
  assert {'errors', 'models.gaussian', 'run.files'} <= leaves
  for leaf in sorted(leaves):
    outside = _imports(modules[leaf], modules) - leaves
    assert not outside, f'{leaf} is a leaf in docs/design.md but imports {sorted(outside)}'


def test_import_graph_has_no_cycle(modules):
  """Top-level imports only (a function-level import is the way to defer a slow one)."""
  graph = {m: _imports(p, modules, top_level_only=True) & set(modules)
           for m, p in modules.items()}
  state = {}

  def visit(node, path):
    state[node] = 'open'
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 'open':
        raise AssertionError('import cycle: ' + ' → '.join(path + [node, nxt]))
      if nxt not in state:
        visit(nxt, path + [node])
    state[node] = 'done'

  for module in sorted(graph):
    if module not in state:
      visit(module, [])


def test_modules_are_small(modules):
  sizes = {}
  for module, path in modules.items():
    with open(path) as f:
      sizes[module] = sum(1 for _ in f)
  assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_map_check_sees_a_leaf_that_imports(modules, tmp_path):
  """The leaf check fails on a leaf that imports a non-leaf (it can fail)."""
  path = tmp_path / 'fake_leaf.py'
  path.write_text('from vae_jax import train\nfrom vae_jax.models import gaussian\n')
  assert _imports(str(path), modules) == {'train', 'models.gaussian'}
