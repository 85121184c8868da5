"""Objectives: the per-example ELBO terms, the registry of objectives, and the pieces of
their losses (total correlation, batch penalties, FactorVAE's discriminator, the
importance-weighted bound). An objective is one `OBJECTIVES` entry (registry.py)
plus its config.objective fields (fields.py)."""

from vae_jax.objectives.fields import FIELDS, Field
from vae_jax.objectives.registry import ARRAY_FIELDS, OBJECTIVES, Auxiliary, Objective, get
from vae_jax.objectives.terms import Terms, capacity, example_terms

__all__ = ['ARRAY_FIELDS', 'FIELDS', 'OBJECTIVES', 'Auxiliary', 'Field', 'Objective', 'Terms',
           'capacity', 'example_terms', 'get']
