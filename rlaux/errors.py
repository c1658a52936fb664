"""User-facing errors, importable without torch so the CLI can report them cheaply."""


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and the allowed values."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is neither under the data root nor downloadable."""
