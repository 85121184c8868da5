"""experiments/colab.ipynb runs top to bottom (CPU, tiny settings) so it cannot rot.

Every cell runs, the install cell included: in the project's environment
everything is present, so it must find the checkout and install nothing.
"""

import os
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = os.path.join(REPO, 'experiments', 'colab.ipynb')


def test_first_code_cell_sets_an_empty_source():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  first = next(cell for cell in notebook.cells if cell.cell_type == 'code')
  assert "\nSOURCE = ''" in first.source
  assert not [l for l in first.source.splitlines() if l and not l.startswith(('#', 'SOURCE'))]
  # The accelerator comes from jax.devices(), never from probing the machine.
  for cell in notebook.cells:
    for probe in ('nvidia-smi', '/dev/accel', 'COLAB_TPU_ADDR'):
      assert probe not in cell.source


@pytest.mark.e2e
@pytest.mark.slow
def test_colab_notebook_runs(tmp_path, monkeypatch):
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_TINY', '1')
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_STEPS', '2')
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_DIR', str(tmp_path / 'out'))
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  # The kernel is this interpreter (the project's virtual environment).
  monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  client = NotebookClient(notebook, timeout=300, kernel_name='python3',
                          resources={'metadata': {'path': os.path.join(REPO, 'experiments')}})
  start = time.time()
  client.execute()
  print(f'notebook: {time.time() - start:.1f} s')
  code_cells = [cell for cell in notebook.cells if cell.cell_type == 'code']
  assert all(cell.execution_count for cell in code_cells)  # every cell ran
  outputs = [o for cell in code_cells for o in cell.outputs]
  text = ''.join(o.get('text', '') for o in outputs)
  assert 'everything present → nothing to install' in text
  assert f'vae_jax from {REPO} ' in text
  assert ' × cpu:' in text
  assert 'Model(beta, dsprites' in text
  assert '4 members in' in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  # samples, reconstructions, traversals (vae_jax.load), then the sweep's
  # metrics vs β and rate–distortion plots.
  assert len(images) == 5
  assert os.path.isfile(tmp_path / 'out' / 'beta_vae' / 'summary.json')
  assert sorted(os.listdir(tmp_path / 'out' / 'beta_sweep'))[:4] == [
      'beta=1_seed=0', 'beta=1_seed=1', 'beta=4_seed=0', 'beta=4_seed=1']
