"""semsearch: semantic search over a corpus of short texts.

    >>> from semsearch import Collection
    >>> collection = Collection.build("abcnews-sample", "news.semsearch")
    >>> collection.search("confronting global challenges", k=3)
"""

__version__ = "0.1.0"

from semsearch import _moved  # noqa: E402

_moved.install()  # old module paths (semsearch.corpus, semsearch.store, ...) keep working

from semsearch.collection import Collection  # noqa: E402
from semsearch.sources.corpus import read_corpus  # noqa: E402
from semsearch.documents import Document, Hit  # noqa: E402
from semsearch.errors import SemsearchError  # noqa: E402

__all__ = ["Collection", "Document", "Hit", "SemsearchError", "read_corpus", "__version__"]
