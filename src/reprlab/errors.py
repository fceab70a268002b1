"""User-facing errors. The CLI prints ``str(error)`` on one line and exits with code 2."""


class ReprlabError(Exception):
    """Bad input from the user: a dataset, config value, checkpoint or path that cannot be used."""

    exit_code = 2


class DataError(ReprlabError):
    """A dataset is missing, corrupt or the wrong shape."""


class ConfigError(ReprlabError):
    """An unknown key, a value of the wrong type, or a value out of range."""


class CheckpointError(ReprlabError):
    """A run directory or checkpoint that cannot be read or does not match."""


class RunExistsError(ReprlabError):
    """The output directory already holds a run and --overwrite was not given."""


class DivergedError(ReprlabError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""
