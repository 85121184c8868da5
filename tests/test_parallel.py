"""Data parallel over 8 (simulated CPU) devices gives the one-device results.

The device count is fixed when JAX starts, so the checks run in a subprocess
with XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e  # every test here makes or reads a run

SCRIPT = textwrap.dedent('''
    import copy, sys
    import jax, numpy as np
    sys.path.insert(0, 'tests')
    from conftest import final_state, load_experiment
    from vae_jax import steps, train
    from vae_jax import train_state
    from vae_jax.run import parallel
    from vae_jax.run import build
    from vae_jax.sweeps import runner as sweep_runner
    from vae_jax.errors import ConfigError

    workdir = sys.argv[1]
    assert jax.device_count() == 8, jax.devices()
    config = load_experiment('test')  # batch 8: one example per device
    config.train.num_steps = 4

    def close(a, b):
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)

    # 1. A whole run (loop, evaluation, checkpoints) on the 8-device mesh ...
    run = build.build_run(config, workdir + '/dp')
    assert run.mesh is not None and run.mesh.shape == {'data': 8}
    sharded = parallel.shard_batch(np.arange(8, dtype=np.int32), run.mesh)
    assert len(sharded.sharding.device_set) == 8 and sharded.addressable_shards[0].data.shape == (1,)
    metrics = train.train_and_evaluate(config, workdir + '/dp')
    # ... equals the same steps on one device (arrays left on device 0, no mesh).
    state = train_state.init_state(run.spec, config.seed)
    for step in range(config.train.num_steps):
      indices = run.dataset.train_indices(config.seed, step, config.data.batch_size)
      state, _ = steps.train_step(state, run.dataset.arrays, indices, run.hparams, spec=run.spec)
    close(final_state(workdir + '/dp', config), state)
    assert np.isfinite(metrics['nelbo']) and np.isfinite(metrics['nll_iw'])

    # 2. A sweep population shards each member's batch the same way.
    base = copy.deepcopy(config)
    base.objective.name = 'beta'
    dirs = sweep_runner.run_sweep(base, {'objective.beta': [1.0, 4.0]}, workdir + '/sweep')
    member = copy.deepcopy(base)
    member.objective.beta = 4.0
    state = train_state.init_state(run.spec, config.seed)
    hparams = train_state.make_hparams(member, run.dataset.num_train)
    spec = train_state.make_spec(member, run.dataset.spec)
    for step in range(config.train.num_steps):
      indices = run.dataset.train_indices(config.seed, step, config.data.batch_size)
      state, _ = steps.train_step(state, run.dataset.arrays, indices, hparams, spec=spec)
    close(final_state(dirs[1], member), state)

    # 3. A global batch that does not split over the devices is a one-line ConfigError.
    bad = copy.deepcopy(config)
    bad.data.batch_size = 12
    try:
      build.build_run(bad, workdir + '/bad')
      raise AssertionError('batch 12 on 8 devices was accepted')
    except ConfigError as e:
      assert 'config.data.batch_size=12' in str(e) and 'multiple of 8' in str(e), e
    print('DATA PARALLEL OK')
''')


@pytest.mark.slow
def test_data_parallel_on_8_devices_matches_one_device(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
             ' --xla_force_host_platform_device_count=8')
  out = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=600, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'DATA PARALLEL OK' in out.stdout
