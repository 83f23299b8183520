"""The engine's user-facing errors, in one place. Each is a ``ValueError`` whose message says what went wrong and
what to do, in one or two sentences: the CLI prints it as ``error: ...`` and the pages show it, never a traceback."""


class CheckpointError(ValueError):
    """A checkpoint could not be used; the message says why in user terms."""


class DataError(ValueError):
    """A dataset is missing or malformed; the message says what was expected where."""


class ImageError(ValueError):
    """An upload that cannot be used as an image; the message says why, in one sentence."""


class PathRefused(ValueError):
    """A path a browser user typed lies outside the data root, or this server takes no paths at all."""


class RankFailed(ValueError):
    """A rank of a torchrun run failed; the message names the rank."""
