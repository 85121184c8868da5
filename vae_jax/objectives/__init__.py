"""Objectives: the per-example ELBO terms, the registry of objectives, and the pieces of
their losses (total correlation, batch penalties, FactorVAE's discriminator, the
importance-weighted bound). An objective is one `OBJECTIVES` entry (registry.py)
plus its config.objective fields (fields.py).

The fields import no JAX (configs and sweep plans read them); the registry and
the terms are imported on first use.
"""

import importlib

from vae_jax.objectives.fields import ARRAY_FIELDS, FIELDS, Field

_LAZY = {'OBJECTIVES': 'registry', 'Auxiliary': 'registry', 'Objective': 'registry',
         'get': 'registry', 'Terms': 'terms', 'capacity': 'terms', 'example_terms': 'terms'}

__all__ = ['ARRAY_FIELDS', 'FIELDS', 'OBJECTIVES', 'Auxiliary', 'Field', 'Objective', 'Terms',
           'capacity', 'example_terms', 'get']


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(f'vae_jax.objectives.{_LAZY[name]}'), name)
  raise AttributeError(f'module vae_jax.objectives has no attribute {name!r}')
