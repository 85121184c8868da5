"""Anomaly detection: the VAE of vae.py trained on every Fashion-MNIST class but trousers.

    python -m vae_jax.main --config=experiments/anomaly.py

Class 1 (Trouser) is left out of training; at the end every test image is
scored by its importance-weighted NLL bound (k = 1,000 here, to keep the
10,000-image scoring to a few minutes on a CPU) and
summary.json reports the AUROC of trousers vs the other nine classes
(`anomaly_auroc`), with the mean score of each group; the scores themselves
are in anomaly_scores.npz. Leave out another class with
--config.data.exclude_classes='(k,)'.

Measured on a 2-core CPU (see README "Results"): RUNTIME_AND_RESULT
"""

from vae_jax import configs


def get_config():
  config = configs.get_config()  # the plain VAE of vae.py
  config.train.num_steps = 20_000
  config.data.exclude_classes = (1,)
  config.eval.anomaly = True
  config.eval.iw_samples = 1_000
  return config
