"""Scouting for BENCHMARKS.md: usearch settings on the first N rows of cached embeddings, quicker than a full run.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/scout_usearch.py EMBEDDINGS.f16.npy 200000 \
        '[{"dtype":"i8","connectivity":16,"expansion_add":64},{"dtype":"f16","connectivity":16,"expansion_add":128}]'

Queries are the 500 rows after the first N (so not in the index); recall@10 against exact search on those N rows;
QPS one query at a time on one thread; build on every core.
"""
import sys, time, json
import numpy as np
from pathlib import Path
from threadpoolctl import threadpool_limits
from semsearch.bench.embedding_cache import read_rows
from semsearch.backends import create_index
from semsearch.bench.evaluate import recall_at_k

path = Path(sys.argv[1]); n = int(sys.argv[2]); configs = json.loads(sys.argv[3])
data = read_rows(path, 0, n); queries = read_rows(path, n, n + 500)
t = time.perf_counter(); truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]; print('exact', round(time.perf_counter() - t, 1), flush=True)
ids = np.arange(n)
for params in configs:
    index = create_index("usearch", 512, params)
    t = time.perf_counter()
    for s in range(0, n, 50000):
        index.add(ids[s:s+50000], data[s:s+50000])
    build = time.perf_counter() - t
    index.threads = 1
    out = []
    with threadpool_limits(1):
        for es in (24, 32, 48, 64):
            index.search(queries[:50], 10, expansion_search=es)
            found = np.zeros((len(queries), 10), dtype=np.int64)
            t = time.perf_counter()
            for q in range(len(queries)):
                found[q] = index.search(queries[q:q+1], 10, expansion_search=es)[0][0]
            qps = len(queries) / (time.perf_counter() - t)
            out.append(f"es{es}: {recall_at_k(found, truth):.3f} @ {qps:.0f}")
    print(json.dumps(params), f"build {build:.1f}s", "; ".join(out), flush=True)
