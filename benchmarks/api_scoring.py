"""Scoring new images through vae_jax.load's Model vs the run's own evaluation loop.

The same MLP VAE (784-500-20, untrained: the cost does not depend on the
weights), the same 100 images, the same k = 5000 importance samples per
image in chunks of 100, 20 images per call (config.eval): `Model.nll_iw`
(host images in, per-example bounds out) against
`loop.importance_weighted_nll` over a device-resident evaluation set,
alternated round by round in one process. Both run the one evaluation loop;
the ratio shows what the public API adds (input checks, host → device copy).
"""

import sys

import numpy as np

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer
from vae_jax import api
from vae_jax.evaluation import loop as eval_loop


def run(quick: bool, rounds: int = 3) -> tuple:
  config = cases.step_config('mlp_b128')
  num = 4 if quick else 100
  dataset = cases.synthetic_dataset(config, num_train=128, num_eval=num)
  trainer = JaxTrainer(config, dataset)
  k = 50 if quick else config.eval.iw_samples
  model = api.Model(config, trainer.spec, trainer.state.params, 0, workdir='(in memory)')
  images = np.asarray(dataset.arrays['eval_x'])
  ev = config.eval
  contenders = {
      'evaluation loop': lambda: eval_loop.importance_weighted_nll(
          trainer.state.params, trainer.spec, dataset, k, seed=config.seed,
          batch_size=ev.iw_batch_size, chunk_size=ev.iw_chunk_size),
      'vae_jax.load(...).nll_iw': lambda: model.nll_iw(images, k),
  }
  same = [fn() for fn in contenders.values()]  # compile; the same numbers
  np.testing.assert_allclose(same[1], same[0], rtol=1e-5)
  times = timing.alternate(contenders, 1 if quick else rounds)
  per_sec = {name: num / float(np.median(t)) for name, t in times.items()}
  ratio = timing.median_ratio(times['evaluation loop'], times['vae_jax.load(...).nll_iw'])
  text = timing.table(['nll_iw, k=%d, %d images' % (k, num), 'examples/s'],
                      [[name, v] for name, v in per_sec.items()])
  text += f'\n\nAPI speed / evaluation-loop speed (median of per-round ratios): {ratio:.2f}'
  return text, {'api_nll_iw_k5000_examples_per_sec': per_sec['vae_jax.load(...).nll_iw'],
                'eval_nll_iw_k5000_examples_per_sec': per_sec['evaluation loop'],
                'api_to_eval_nll_iw_speed_ratio': ratio}


if __name__ == '__main__':
  print(run(quick='--quick' in sys.argv)[0])
