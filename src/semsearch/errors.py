"""Errors a user can cause and fix. The CLI prints them as one line, without a traceback."""


class SemsearchError(Exception):
    """Base of every error that is the user's to fix: bad input, a wrong path, a missing extra."""


class CorpusError(SemsearchError):
    """A corpus file cannot be read: names the file, the line and what was wrong."""


class CollectionError(SemsearchError):
    """A collection directory is missing, damaged, or was built with something else."""


class BuildInterrupted(KeyboardInterrupt):
    """A build stopped by Ctrl-C or SIGTERM. Its completed batches are kept; ``--resume`` continues it."""


class MissingExtraError(SemsearchError):
    """An optional dependency is not installed; says which extra installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package {package!r}, which is not installed; "
            f"install it with: pip install 'semsearch[{extra}]' (from a clone of semsearch: pip install -e '.[{extra}]')"
        )
        self.package = package
        self.extra = extra


def import_optional(module: str, package: str, extra: str, purpose: str):  # noqa: ANN201 - returns a module
    """Import an optional dependency, or raise MissingExtraError naming the extra that installs it."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError:
        raise MissingExtraError(package, extra, purpose) from None
