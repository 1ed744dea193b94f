"""semsearch: semantic search over a corpus of short texts.

    >>> from semsearch import Collection
    >>> collection = Collection.build("abcnews-sample", "news.semsearch")
    >>> collection.search("confronting global challenges", k=3)
"""

__version__ = "0.1.0"

from semsearch.collection import Collection  # noqa: E402
from semsearch.corpus import read_corpus  # noqa: E402
from semsearch.documents import Document, Hit  # noqa: E402
from semsearch.errors import SemsearchError  # noqa: E402

__all__ = ["Collection", "Document", "Hit", "SemsearchError", "read_corpus", "__version__"]
