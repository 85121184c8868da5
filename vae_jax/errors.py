"""User-facing errors: reported as one line and exit code 2, never a stack trace."""


class UserError(Exception):
  """Bad input from the user (config, data, workdir); the message says what to do."""
  exit_code = 2


class ConfigError(UserError):
  """An invalid configuration value or key."""


class DataError(UserError):
  """A dataset that cannot be found, read or used."""


class WorkdirError(UserError):
  """A workdir that cannot be used as asked (e.g. a config mismatch on resume)."""


class NonFiniteError(UserError):
  """Training produced a NaN or infinity; the message names the step and term."""
  exit_code = 1


class ResourceError(UserError):
  """The device ran out of memory; the message names the settings to lower."""


class Interrupted(UserError):
  """SIGINT or SIGTERM stopped the run after a checkpoint; exit code 128 + signal."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.exit_code = 128 + signum


class SignalInterrupt(KeyboardInterrupt):
  """SIGINT or SIGTERM stopped the command at once, outside the training loop
  (which first saves a checkpoint: `Interrupted`); exit code 128 + signal.

  A KeyboardInterrupt, so no `except Exception` of a library swallows it.
  """

  def __init__(self, signum: int):
    super().__init__(signum)
    self.signum = signum
    self.exit_code = 128 + signum
