"""A collection directory's file names and format version: what every writer and reader of one calls things."""

# Version 2: a manifest naming segments (each its own documents, vectors and index) plus deletion records, and
# ids that may be strings. Version 1 (one set of files, integer ids) still opens, as a collection of one segment.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
DOCUMENTS_FILE = "documents.sqlite"
VECTORS_FILE = "vectors.npy"
REDUCER_FILE = "reducer.npz"
# The documents an approximate index cannot find by their own vectors, scored exactly (backends/reachability.py).
ORPHANS_FILE = "orphans.npz"
# A backend's own files are index.<backend> and names beginning with it (index.exact.ids, ...).
INDEX_FILE_PREFIX = "index."
# An update writes generation-N/; the collection root then holds only the manifest (and the lock).
GENERATION_PREFIX = "generation-"
UPDATE_LOCK_FILE = ".update.lock"
# An update of a version-2 collection writes its new documents as segment-N/ (N: the generation that wrote it),
# and the keys it deleted from a segment as deleted-N.SEGMENT.npy at the top (N: the generation).
SEGMENT_PREFIX = "segment-"
DELETIONS_PREFIX = "deleted-"
# Names a build writes at the top of a collection; deleted once a generation directory replaces them.
BUILD_FILE_PREFIXES = tuple(name if name == DOCUMENTS_FILE else name.split(".")[0] + "."
                            for name in (DOCUMENTS_FILE, VECTORS_FILE, INDEX_FILE_PREFIX, REDUCER_FILE, ORPHANS_FILE)) + (DELETIONS_PREFIX,)
REQUIRED_KEYS = ("encoder", "backend", "files", "count")
