"""Trains the PyTorch reference MLP VAE on Fashion-MNIST until a held-out target.

    python -m benchmarks.torch_train --target=250 --max_steps=4000 --eval_every=250

Prints one JSON line per evaluation: {"step", "time" (Unix s), "nelbo"}; stops
at the first evaluation with nelbo <= target. Same network, loss, optimizer,
batch and binarization as experiments/vae.py (see benchmarks/torch_vae.py).
"""

import argparse
import json
import time

import numpy as np
import torch

from benchmarks import cases, torch_vae
from vae_jax.data import image_arrays


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--target', type=float, required=True)
  parser.add_argument('--max_steps', type=int, required=True)
  parser.add_argument('--eval_every', type=int, required=True)
  parser.add_argument('--local_dir', default='')
  args = parser.parse_args()
  config = cases.experiment('vae')
  data = image_arrays.load_image_arrays('fashion_mnist', args.local_dir)
  trainer = torch_vae.TorchTrainer(config, data.train_images)
  test = np.asarray(data.test_images)
  step = 0
  while True:
    nelbo = trainer.nelbo(test)
    print(json.dumps({'step': step, 'time': time.time(), 'nelbo': nelbo}), flush=True)
    if nelbo <= args.target or step >= args.max_steps:
      return
    trainer.steps(args.eval_every)
    step += args.eval_every


if __name__ == '__main__':
  torch.set_grad_enabled(True)
  main()
