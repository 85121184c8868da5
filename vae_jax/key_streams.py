"""The key streams: every random draw derives from key(seed) and the step.

A train step's keys are `split(fold_in(key(seed), step))` (data, sampling);
fixed fold_in streams of key(seed) that no step index reaches serve
initialization, evaluation and pictures; an objective's own draws fold a
stream into the step's sampling key, so no other key moves. Nothing is split
in the Python loop, so a resumed run draws exactly what an uninterrupted one
would (docs/design.md, rule 1).
"""

import jax

# fold_in streams of key(seed) that no train step (0 <= step < 2**31 - 3) uses.
INIT_STREAM, EVAL_STREAM, IMAGE_STREAM = 2**31 - 1, 2**31 - 2, 2**31 - 3
# fold_in stream of a step's sampling key for an objective's batch term (WAE's
# prior draws): drawn only for objectives that ask (Objective.batch_key), so the
# per-example keys, split from the same sampling key, stay as they are.
BATCH_STREAM = 2**31 - 1
# fold_in stream of the init key (the auxiliary network's initialization) and
# of a step's sampling key (its loss's draws: FactorVAE's permutations), made
# only for objectives with an auxiliary network: no other key moves.
AUX_STREAM = 2**31 - 2
# fold_in stream of a step's data key for a second batch (its indices, its
# binarization and its codes' draws: FactorVAE's 'second_batch' form), drawn
# only when asked for: the step's own batch does not move.
SECOND_BATCH_STREAM = 2**31 - 1


def step_keys(seed: jax.Array, step: jax.Array):
  """(data key, sampling key) of a step: fold_in(key(seed), step), split once."""
  data_key, sample_key = jax.random.split(jax.random.fold_in(jax.random.key(seed), step))
  return data_key, sample_key
