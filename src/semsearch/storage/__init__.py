"""A collection's files on disk: their layout and manifest, the atomic swap, the record of verified
checksums, the SQLite document store and the float16 vector file."""
