"""experiments/colab.ipynb runs top to bottom (CPU, tiny sweep) so it cannot rot."""

import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO


@pytest.mark.slow
def test_colab_notebook_runs(tmp_path, monkeypatch):
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_TINY', '1')
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_STEPS', '2')
  monkeypatch.setenv('VAE_JAX_NOTEBOOK_DIR', str(tmp_path / 'sweep'))
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  # The kernel is this interpreter (the project's virtual environment).
  monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
  notebook = nbformat.read(os.path.join(REPO, 'experiments', 'colab.ipynb'), as_version=4)
  client = NotebookClient(notebook, timeout=300, kernel_name='python3',
                          resources={'metadata': {'path': os.path.join(REPO, 'experiments')}})
  client.execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code' for o in cell.outputs]
  text = ''.join(o.get('text', '') for o in outputs)
  assert '4 members in' in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  # metrics vs β, the rate–distortion curve, then a member's samples and traversals
  # drawn through vae_jax.load.
  assert len(images) == 4
  assert 'Model(beta, dsprites' in text
  assert sorted(os.listdir(tmp_path / 'sweep'))[:4] == [
      'beta=1_seed=0', 'beta=1_seed=1', 'beta=4_seed=0', 'beta=4_seed=1']
