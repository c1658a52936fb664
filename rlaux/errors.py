"""User-facing errors, importable without torch so the CLI can report them cheaply.

Every error a user can cause (a bad flag, config file, data file, checkpoint or run
directory) is a `UserError`: `rlaux.cli.main` prints its one-line message, which names the
file or key, what is wrong and how to fix it, and exits with status 2. Anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user; the message is one line naming the culprit and the fix."""


class ConfigError(UserError, ValueError):
    """A config value, flag, config file or params.yaml is invalid; the message names the key and the fix."""


class DatasetNotFoundError(UserError, FileNotFoundError):
    """The dataset is neither under the data root nor downloadable, or its torchvision files are incomplete."""


class DataFileError(UserError, ValueError):
    """A data file exists but cannot be used (not an archive, truncated, wrong arrays, dtypes, shapes or labels)."""


class CheckpointError(UserError, ValueError):
    """A checkpoint or run directory cannot be used (truncated, corrupt, another version, missing files)."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint on disk belongs to a run with another config."""


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
