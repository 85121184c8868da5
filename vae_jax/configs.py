"""The base configuration; experiments in `experiments/` import and override it.

Every field is overridable on the command line, e.g.
`--config.objective.beta=4 --config.train.num_steps=500`. The config is
locked: an unknown key is an error, and `validate` checks every value before
anything is compiled. Reading an experiment file: config_files.py.
"""

import functools
from typing import Callable

import ml_collections

from vae_jax import objectives  # its fields: no JAX (the registry loads on first use)
from vae_jax.errors import ConfigError

BINARIZE = ('dynamic', 'static', 'none')
LR_SCHEDULES = ('constant', 'cosine')
POPULATION_MODES = ('auto', 'vmap', 'loop')
TRAIN_HPARAMS = ('learning_rate', 'warmup_steps', 'num_steps')  # train.* entering a step as arrays
# DATASETS, ARCHITECTURES, FACTOR_SOURCES and the validation RULES come from the
# registries of datasets, networks and objectives, which import JAX: they are
# built on first use (`_tables`), so that reading a config or planning a sweep
# needs no JAX.


def get_config() -> ml_collections.ConfigDict:
  """Plain MLP VAE on dynamically binarized Fashion-MNIST."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # every random draw derives from (seed, step)

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist'  # see DATASETS, or any TFDS image dataset
  config.data.batch_size = 128  # examples per step (the last partial batch is never used)
  config.data.binarize = 'dynamic'  # dynamic: resample x ~ Bernoulli(intensity) each use
  config.data.local_dir = ''  # directory of MNIST-format IDX files (offline use)
  config.data.tfds_data_dir = ''  # TFDS data dir ('' = TFDS default)
  config.data.eval_size = 10_000  # dSprites: size of the fixed evaluation sample
  config.data.exclude_classes = ()  # labels left out of training (anomaly detection)

  config.model = ml_collections.ConfigDict()
  config.model.architecture = 'mlp'  # 'mlp' | 'conv' | 'reference_conv' (models.ARCHITECTURES)
  config.model.hidden_dims = (500,)  # encoder Dense widths (after the convs for 'conv')
  config.model.decoder_hidden_dims = ()  # () = the encoder's widths reversed
  config.model.conv_channels = (32, 64)  # 'conv' only: 4x4 stride-2 layers
  config.model.activation = 'relu'
  config.model.decoder_activation = ''  # '' = the encoder's activation
  config.model.latent_dim = 20
  config.model.conditional = False  # True = CVAE: one-hot label into encoder and decoder
  config.model.likelihood = 'bernoulli'  # 'bernoulli' | 'gaussian_fixed' | 'gaussian_learned'
  config.model.gaussian_scale = 0.1  # σ of 'gaussian_fixed'
  config.model.init = 'torch'  # 'torch' (PyTorch's defaults) | 'flax' (LeCun normal, zero biases)

  config.objective = ml_collections.ConfigDict()
  config.objective.name = 'elbo'  # one of objectives.OBJECTIVES
  for key, field in objectives.FIELDS.items():  # defaults and meaning: objectives.FIELDS
    config.objective[key] = field.default

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 10_000
  config.train.learning_rate = 1e-3  # Adam (peak) learning rate
  config.train.lr_schedule = 'constant'  # 'constant' | 'cosine' (decay to 0 at num_steps)
  config.train.warmup_steps = 0  # linear warm-up of the learning rate
  config.train.grad_clip_norm = 0.0  # clip by global norm; 0 = off
  config.train.adam_b1 = 0.9
  config.train.adam_b2 = 0.999
  config.train.adam_eps = 1e-8
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 2_000
  config.train.checkpoint_every_steps = 2_000
  config.train.population = 'auto'  # sweeps: 'vmap' | 'loop' | 'auto' (steps.loop_members)

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 500  # held-out evaluation batch (padded at the end, never dropped)
  config.eval.iw_samples = 5_000  # k of the importance-weighted bound (protocol default)
  # CVAE: k per label of −log Σ_y p(y) p(x|y) (0 = iw_samples / classes: nll_iw's cost)
  config.eval.marginal_iw_samples = 0
  config.eval.iw_chunk_size = 100  # samples of k decoded at once per example
  config.eval.iw_batch_size = 20  # examples per call: memory ∝ iw_batch_size × iw_chunk_size
  config.eval.num_images = 64  # pictures per image grid
  config.eval.anomaly = False  # final eval: per-example nll_iw scores (+ AUROC of excluded classes)
  config.eval.disentanglement = False  # BetaVAE, FactorVAE, MIG, DCI, SAP scores at each eval
  config.eval.disentanglement_divisor = 1  # final eval: reference sample counts / this (periodic: ≥ 10)
  config.eval.factor_source = 'dsprites'  # see FACTOR_SOURCES (procedural ones: data.procedural)
  config.eval.inline = True  # False: training only checkpoints; --mode=evaluator evaluates
  config.eval.workers = 0  # --mode=sweep with eval.inline=False: evaluator processes beside it
  return config


# The networks of the dSprites experiments (`dsprites_experiment`), the default first.
DSPRITES_NETWORKS = ('conv', 'fc', 'reference_conv')


def dsprites_experiment(variant: str = 'conv') -> ml_collections.ConfigDict:
  """The shared set-up of the dSprites disentanglement experiments.

  10 latents, Bernoulli decoder, batch 64, Adam 5e-4 (Burgess et al. 2018),
  disentanglement scores at every evaluation. `variant` picks the network
  (DSPRITES_NETWORKS):
  'conv' — Burgess et al.'s: 4 conv layers (32 ch, 4×4, stride 2) → FC 256 →
  FC 256, 30,000 steps;
  'fc' — the fully connected network of the β-VAE paper and of
  disentanglement_lib: encoder 4096-1200-1200 (ReLU), decoder 1200-1200-1200
  (tanh) → 4096, 10,000 steps;
  'reference_conv' — disentanglement_lib's conv network (Locatello et al.
  2019; models/reference_conv.py), 30,000 steps.
  The study's published ranges come from the last two.
  """
  config = get_config()
  config.data.name = 'dsprites'
  config.data.batch_size = 64
  config.model.latent_dim = 10
  if variant == 'fc':  # the base 'mlp' architecture
    config.model.hidden_dims = (1200, 1200)
    config.model.decoder_hidden_dims = (1200, 1200, 1200)
    config.model.decoder_activation = 'tanh'
    config.train.num_steps = 10_000
  elif variant == 'conv':
    config.model.architecture = 'conv'
    config.model.conv_channels = (32, 32, 32, 32)
    config.model.hidden_dims = (256, 256)
    config.train.num_steps = 30_000
  elif variant == 'reference_conv':  # its widths are fixed by the architecture
    config.model.architecture = 'reference_conv'
    config.train.num_steps = 30_000
  else:
    raise ConfigError(f"unknown network variant {variant!r}; use one of "
                      f"{', '.join(':' + n for n in DSPRITES_NETWORKS)}")
  config.train.learning_rate = 5e-4
  config.train.eval_every_steps = 5_000
  config.train.checkpoint_every_steps = 5_000
  config.eval.batch_size = 250
  config.eval.iw_samples = 100  # dSprites' likelihood is no benchmark; k=5000 costs hours on a CPU
  config.eval.disentanglement = True
  return config


def parse_arg(arg: str, allowed: tuple) -> set:
  """The switches of a config argument 'a,b' (FILE:a,b); ConfigError for one not in `allowed`."""
  switches = {switch.strip() for switch in arg.split(',') if switch.strip()}
  unknown = sorted(switches - set(allowed))
  if unknown:
    raise ConfigError(f'unknown config argument {unknown[0]!r}; this file takes a '
                      f'comma-separated subset of {", ".join(allowed)} (e.g. FILE.py:'
                      f'{",".join(allowed[-2:])})')
  return switches


def parse_seeds(arg: str, allowed: tuple, default: int) -> tuple:
  """(switches, number of seeds) of a sweep file's argument 'a,b,seeds=N': `allowed`
  the other switches, `default` the seeds without seeds=N; ConfigError if malformed."""
  parts = [part.strip() for part in arg.split(',') if part.strip()]
  seeds = [part for part in parts if part.startswith('seeds=')]
  num_seeds = default
  if seeds:
    text = seeds[-1].split('=', 1)[1]
    if not text.isdigit() or int(text) < 1:
      raise ConfigError(f"config argument {seeds[-1]!r}: the number of seeds must be a "
                        "positive integer, e.g. ':seeds=3'")
    num_seeds = int(text)
  rest = ','.join(part for part in parts if not part.startswith('seeds='))
  return parse_arg(rest, tuple(allowed) + ('seeds=N',)), num_seeds


def choose(switches: set, choices: tuple) -> str:
  """The one of `choices` among the switches (choices[0] if none); ConfigError if several."""
  chosen = [choice for choice in choices if choice in switches]
  if len(chosen) > 1:
    raise ConfigError(f'config arguments {" and ".join(chosen)} exclude each other; pick one')
  return chosen[0] if chosen else choices[0]


def make_tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks an experiment in place to a CI-sized run (as experiments/test.py) and returns it."""
  config.data.batch_size = 8
  config.data.eval_size = 24  # dSprites' held-out sample
  config.model.hidden_dims = (16,)
  config.model.decoder_hidden_dims = ()
  if config.model.architecture == 'conv':
    config.model.conv_channels = (8, 8)
  config.model.latent_dim = 3
  config.objective.discriminator_hidden_dims = (16,) * 6  # 'factor_vae' (6 × 1000 otherwise)
  config.train.num_steps = 6
  config.train.log_every_steps = 2
  config.train.eval_every_steps = 3
  config.train.checkpoint_every_steps = 3
  config.eval.batch_size = 16
  config.eval.num_images = 4
  config.eval.iw_samples = 8
  if config.eval.disentanglement:
    config.eval.disentanglement_divisor = 200  # 50 reference points instead of 10,000
  return config


class Whole:
  """Marks a rule's predicate as one of the whole config (a cross-field rule)."""

  def __init__(self, predicate: Callable[[ml_collections.ConfigDict], bool]):
    self.predicate = predicate


def _positive_ints(values) -> bool:
  return all(isinstance(v, int) and v > 0 for v in values)


def _positive(value) -> bool:
  return value > 0


def _non_negative(value) -> bool:
  return value >= 0


@functools.cache
def _tables() -> dict:
  """{name: value} of the tables built from the registries (see the top of the module)."""
  from vae_jax import models  # pylint: disable=g-import-not-at-top
  from vae_jax.data import procedural  # pylint: disable=g-import-not-at-top
  from vae_jax.models import likelihoods  # pylint: disable=g-import-not-at-top
  DATASETS = (*procedural.NAMES, 'fashion_mnist', 'mnist', 'binarized_mnist')  # + any TFDS one
  ARCHITECTURES = tuple(models.ARCHITECTURES)
  FACTOR_SOURCES = (*procedural.NAMES, 'tfds:dsprites', 'tfds:shapes3d')
  # (key, predicate of the field's value or Whole(predicate of the config),
  #  requirement): 'config.KEY must be REQUIREMENT, got VALUE', checked in order.
  # Derived from the objective registry: a new objective adds its rows there.
  OBJECTIVE_RULES = (
      ('objective.name', lambda v: v in objectives.OBJECTIVES,
       f'one of {tuple(objectives.OBJECTIVES)}'),
      *(('data.batch_size', Whole(lambda c, o=o: c.objective.name != o.name or
                                  c.data.batch_size >= o.min_batch_size),
         f'at least {o.min_batch_size} for objective {o.name!r} (its loss couples the '
         'examples of a batch)')
        for o in objectives.OBJECTIVES.values() if o.min_batch_size > 1),
      *((f'objective.{key}', field.rule, field.requirement)
        for key, field in objectives.FIELDS.items()),
  )

  RULES = (
      ('seed', lambda v: _non_negative(v) and v < 2**31, 'an integer in [0, 2**31)'),
      ('data.name', bool, f'a dataset name ({", ".join(DATASETS)} or a TFDS image dataset)'),
      ('data.batch_size', _positive, 'a positive integer'),
      ('data.binarize', lambda v: v in BINARIZE, f'one of {BINARIZE}'),
      ('data.binarize', Whole(lambda c: procedural.binarize_allowed(c.data.name, c.data.binarize)),
       f"'none' for {', '.join(procedural.continuous_names())} (continuous pixels): pass "
       '--config.data.binarize=none'),
      ('data.eval_size', _positive, 'a positive integer'),
      ('data.exclude_classes', lambda v: all(isinstance(c, int) and c >= 0 for c in v),
       'a tuple of class labels (non-negative integers)'),
      ('model.architecture', lambda v: v in ARCHITECTURES, f'one of {ARCHITECTURES}'),
      ('model.hidden_dims', _positive_ints, 'a tuple of positive integers'),
      ('model.decoder_hidden_dims', _positive_ints,
       'a tuple of positive integers (or () to mirror the encoder)'),
      ('model.conv_channels', Whole(lambda c: _positive_ints(c.model.conv_channels) and (
          c.model.architecture != 'conv' or len(c.model.conv_channels) > 0)),
       'a non-empty tuple of positive integers'),
      ('model.activation', lambda v: v in models.ACTIVATIONS,
       f'one of {tuple(models.ACTIVATIONS)}'),
      ('model.decoder_activation', lambda v: v == '' or v in models.ACTIVATIONS,
       f"'' (the encoder's) or one of {tuple(models.ACTIVATIONS)}"),
      ('model.latent_dim', _positive, 'a positive integer'),
      ('model.likelihood', lambda v: v in likelihoods.LIKELIHOODS,
       f'one of {likelihoods.LIKELIHOODS}'),
      ('model.gaussian_scale', _positive, 'positive'),
      ('model.init', lambda v: v in models.INITS, f'one of {models.INITS}'),
      *OBJECTIVE_RULES,
      ('train.num_steps', _non_negative, 'a non-negative integer'),
      ('train.learning_rate', _positive, 'positive'),
      ('train.lr_schedule', lambda v: v in LR_SCHEDULES, f'one of {LR_SCHEDULES}'),
      ('train.population', lambda v: v in POPULATION_MODES, f'one of {POPULATION_MODES}'),
      ('train.warmup_steps', _non_negative, 'non-negative'),
      ('train.grad_clip_norm', _non_negative, 'non-negative (0 = off)'),
      ('train.adam_b1', lambda v: 0 <= v < 1, 'in [0, 1)'),
      ('train.adam_b2', lambda v: 0 <= v < 1, 'in [0, 1)'),
      ('train.adam_eps', _positive, 'positive'),
      *((f'train.{key}', _positive, 'a positive integer')
        for key in ('log_every_steps', 'eval_every_steps', 'checkpoint_every_steps')),
      ('eval.batch_size', _positive, 'a positive integer'),
      ('eval.iw_samples', lambda v: v >= 1, 'a positive integer'),
      ('eval.marginal_iw_samples', _non_negative,
       'a non-negative integer (0 = eval.iw_samples / number of classes)'),
      ('eval.iw_batch_size', lambda v: v >= 1, 'a positive integer'),
      ('eval.iw_chunk_size', lambda v: v >= 1, 'a positive integer'),
      ('eval.num_images', _positive, 'a positive integer'),
      ('eval.disentanglement_divisor', lambda v: v >= 1, 'a positive integer'),
      ('eval.inline', lambda v: isinstance(v, bool), 'True or False'),
      ('eval.workers', lambda v: isinstance(v, int) and v >= 0, 'an integer ≥ 0'),
      ('eval.factor_source', lambda v: v in FACTOR_SOURCES, f'one of {FACTOR_SOURCES}'),
      ('eval.disentanglement', Whole(lambda c: not (c.eval.disentanglement and
                                                    c.model.conditional)),
       'False for a conditional model (the scores use the unconditional encoder mean)'),
      ('eval.anomaly', Whole(lambda c: not c.eval.anomaly or c.objective.name not in
                             objectives.OBJECTIVES or objectives.get(c.objective.name).stochastic),
       'False for an objective without q(z|x) such as \'ae\' (anomaly scores are nll_iw)'),
  )
  return {'DATASETS': DATASETS, 'ARCHITECTURES': ARCHITECTURES,
          'FACTOR_SOURCES': FACTOR_SOURCES, 'OBJECTIVE_RULES': OBJECTIVE_RULES, 'RULES': RULES}


def __getattr__(name: str):
  if name in ('DATASETS', 'ARCHITECTURES', 'FACTOR_SOURCES', 'OBJECTIVE_RULES', 'RULES'):
    return _tables()[name]
  raise AttributeError(f'module vae_jax.configs has no attribute {name!r}')


def _field(config: ml_collections.ConfigDict, key: str):
  for part in key.split('.'):
    config = config[part]
  return config


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first field that breaks a rule of RULES."""
  for key, predicate, requirement in _tables()['RULES']:
    value = _field(config, key)
    ok = predicate.predicate(config) if isinstance(predicate, Whole) else predicate(value)
    if not ok:
      raise ConfigError(f'config.{key} must be {requirement}, got {value!r}')
