"""The PyTorch eager reference: vae_jax's networks, loss and optimizer in torch.

Same architecture as `vae_jax.models.build` (Dense/ReLU MLP, or 4×4 stride-2
convolutions with padding 1 — `SAME` for even sides — and mirrored transposed
convolutions), the same per-example loss (Bernoulli log-likelihood from
logits summed over pixels + β·analytic KL, one reparameterized sample, batch
mean), torch.optim.Adam with the same settings, and the same data handling
(uint8 images gathered by index per step, dynamic binarization
x ~ Bernoulli(intensity) where vae_jax does it). A benchmark-only dependency.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _mlp(sizes: list, last_activation: bool) -> list:
  layers = []
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    layers.append(nn.Linear(a, b))
    if last_activation or i < len(sizes) - 2:
      layers.append(nn.ReLU())
  return layers


class TorchVAE(nn.Module):
  """The network of a vae_jax `config.model` for images [C, H, W] (NCHW)."""

  def __init__(self, model_config, image_shape: tuple):
    super().__init__()
    height, width, channels = image_shape
    latent = model_config.latent_dim
    hidden = list(model_config.hidden_dims)
    decoder_hidden = list(model_config.decoder_hidden_dims or hidden[::-1])
    self.image_shape = (channels, height, width)
    enc, dec = [], []
    if model_config.architecture == 'conv':
      conv = list(model_config.conv_channels)
      ins = [channels] + conv[:-1]
      for a, b in zip(ins, conv):
        enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
      factor = 2 ** len(conv)
      self.start = (conv[-1], height // factor, width // factor)
      enc.append(nn.Flatten())
      enc += _mlp([math.prod(self.start)] + hidden + [2 * latent], last_activation=False)
      dec += _mlp([latent] + decoder_hidden + [math.prod(self.start)], last_activation=True)
      dec.append(nn.Unflatten(1, self.start))
      outs = conv[::-1][1:] + [channels]
      for i, (a, b) in enumerate(zip(conv[::-1], outs)):
        dec.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
        if i < len(outs) - 1:
          dec.append(nn.ReLU())
    else:
      pixels = height * width * channels
      enc += [nn.Flatten()] + _mlp([pixels] + hidden + [2 * latent], last_activation=False)
      dec += _mlp([latent] + decoder_hidden + [pixels], last_activation=False)
      dec.append(nn.Unflatten(1, self.image_shape))
    self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

  def terms(self, x: torch.Tensor, eps: torch.Tensor):
    """Per-example (recon, kl) in nats, z = mu + σ·eps, Bernoulli decoder."""
    mu, logvar = self.encoder(x).chunk(2, dim=1)
    logits = self.decoder(mu + torch.exp(0.5 * logvar) * eps)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)
    kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1)
    return recon, kl

  def loss(self, x: torch.Tensor, beta: float) -> torch.Tensor:
    """Batch mean of recon + β·kl (nats) with one sample eps ~ N(0, I)."""
    latent = self.encoder[-1].out_features // 2
    recon, kl = self.terms(x, torch.randn(len(x), latent, device=x.device))
    return (recon + beta * kl).mean()


class TorchTrainer:
  """Adam steps of a TorchVAE on uint8 images [N, H, W, C] held in memory
  (on `device`: 'cpu', or 'cuda' where torch has a GPU)."""

  def __init__(self, config, images: np.ndarray, seed: int = 0, device: str = 'cpu'):
    torch.manual_seed(seed)
    self.device = torch.device(device)
    self.model = TorchVAE(config.model, images.shape[1:]).to(self.device)
    cfg = config.train
    self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate,
                                      betas=(cfg.adam_b1, cfg.adam_b2), eps=cfg.adam_eps)
    self.images = torch.from_numpy(np.array(images.transpose(0, 3, 1, 2))).to(self.device)
    self.batch_size = config.data.batch_size
    self.binarize = config.data.binarize == 'dynamic' and config.data.name != 'dsprites'
    self.beta = float(config.objective.beta) if config.objective.name == 'beta' else 1.0
    self.generator = torch.Generator().manual_seed(seed)
    self.order, self.position = None, len(images)

  def _indices(self) -> torch.Tensor:
    num = len(self.images)
    if self.position + self.batch_size > num:
      self.order = torch.randperm(num, generator=self.generator)
      self.position = 0
    batch = self.order[self.position:self.position + self.batch_size]
    self.position += self.batch_size
    return batch.to(self.device)

  def batch(self) -> torch.Tensor:
    x = self.images[self._indices()].float() / 255.0
    return torch.bernoulli(x) if self.binarize else x

  def step(self) -> torch.Tensor:
    """One Adam update; returns the loss tensor (no host sync)."""
    loss = self.model.loss(self.batch(), self.beta)
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    self.optimizer.step()
    return loss

  def steps(self, num: int) -> float:
    for _ in range(num):
      loss = self.step()
    return loss.item()

  @torch.no_grad()
  def nelbo(self, images: np.ndarray, batch_size: int = 500) -> float:
    """Held-out mean nelbo (nats) of uint8 images, binarized with a fixed seed."""
    generator = torch.Generator().manual_seed(1)
    total = 0.0
    data = torch.from_numpy(np.array(images.transpose(0, 3, 1, 2)))
    for start in range(0, len(data), batch_size):
      x = data[start:start + batch_size].float() / 255.0
      if self.binarize:
        x = torch.bernoulli(x, generator=generator)
      x = x.to(self.device)
      total += float(self.model.loss(x, 1.0)) * len(x)
    return total / len(data)
