"""Old import paths of modules that moved when the package was regrouped by stage, kept working.

``import semsearch.corpus`` and ``from semsearch.store import DocumentStore`` still work: a finder
on ``sys.meta_path`` answers each old name with the module at its new place (the same module
object, so ``semsearch.corpus is semsearch.sources.corpus``). No file is left at the old place,
so the folders show the stages; new code imports from the new places.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED: dict[str, str] = {
    "semsearch.corpus": "semsearch.sources.corpus",
    "semsearch.datasets": "semsearch.sources.datasets",
    "semsearch.embedding_files": "semsearch.sources.embedding_files",
    "semsearch.tfrecord": "semsearch.sources.tfrecord",
    "semsearch.beam": "semsearch.sources.beam",
    "semsearch.embedding": "semsearch.encoders.parallel",
    "semsearch.manifest": "semsearch.storage.layout",
    "semsearch.atomic": "semsearch.storage.atomic",
    "semsearch.verified": "semsearch.storage.verified",
    "semsearch.store": "semsearch.storage.store",
    "semsearch.vector_file": "semsearch.storage.vector_file",
    "semsearch.building": "semsearch.writing.build",
    "semsearch.checkpoint": "semsearch.writing.checkpoint",
    "semsearch.updates": "semsearch.writing.update",
    "semsearch.retrieval": "semsearch.search.retrieval",
    "semsearch.evaluate": "semsearch.bench.evaluate",
    "semsearch.relevance": "semsearch.bench.relevance",
    "semsearch.reduce": "semsearch.backends.factory",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module at the new place."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module ran when it was imported."""


def install() -> None:
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
