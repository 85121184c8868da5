"""Anomaly detection: the VAE of vae.py trained on every Fashion-MNIST class but trousers.

    python -m vae_jax.main --config=experiments/anomaly.py

Class 1 (Trouser) is left out of training; at the end every test image is
scored by its importance-weighted NLL bound (k = 1,000 here, a tenth of the
protocol's cost) and summary.json reports the AUROC of trousers vs the other
nine classes (`anomaly_auroc`), with the mean score of each group; the scores
themselves are in anomaly_scores.npz. Leave out another class with
--config.data.exclude_classes='(k,)'.

Measured (docs/results.md): AUROC 0.342. Trousers, never seen in training,
get a lower NLL (204.3 nats) than the training classes (242.0) —
the known failure of likelihood-based out-of-distribution detection
(Nalisnick et al. 2019). nelbo 241.99, nll_iw 238.22 over all test images.
"""

from vae_jax import configs


def get_config(arg: str = ''):
  switches = configs.parse_arg(arg, ('tiny',))
  config = configs.get_config()  # the plain VAE of vae.py
  config.train.num_steps = 20_000
  config.data.exclude_classes = (1,)
  config.eval.anomaly = True
  config.eval.iw_samples = 1_000
  return configs.make_tiny(config) if 'tiny' in switches else config
