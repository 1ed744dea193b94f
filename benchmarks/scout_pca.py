"""Scouting for BENCHMARKS.md: how many of the true top 10 survive PCA to d dimensions plus re-ranking R candidates.

    .venv/bin/python benchmarks/scout_pca.py 200000

Exact search in the PCA space (no graph), so this is the ceiling of "PCA before the graph, re-rank on full vectors";
300 queries from rows 1,000,000 on, against the first N rows of the cached 1.1M embeddings.
"""
import numpy as np, sys
from pathlib import Path
from semsearch.bench.embedding_cache import read_rows
from semsearch.backends.factory import PrincipalComponents
path = Path('/work/cache/embeddings/headlines-1m.use-multilingual.0653e0406c7c.f16.npy')
n = int(sys.argv[1])
data = read_rows(path, 0, n); queries = read_rows(path, 1_000_000, 1_000_300)
truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
for d in (64, 96, 128, 192):
    p = PrincipalComponents(d); p.fit(data[:20000])
    reduced = p.transform(data); rq = p.transform(queries)
    s = rq @ reduced.T
    line = []
    for R in (10, 50, 100, 200):
        cand = np.argpartition(-s, R, axis=1)[:, :R]
        full = np.einsum('qd,qrd->qr', queries, data[cand])
        top = np.take_along_axis(cand, np.argsort(-full, axis=1)[:, :10], axis=1)
        rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, truth)])
        line.append(f"R{R}:{rec:.3f}")
    print(d, " ".join(line), flush=True)
