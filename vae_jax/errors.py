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
