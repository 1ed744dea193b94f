"""Documents and vectors in: corpus files, the bundled and downloadable data sets, vectors embedded
elsewhere (Parquet from beam-embed, the tutorial's TFRecords) and the Beam pipeline that writes them."""
