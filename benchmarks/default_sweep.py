"""The default usearch graph over the 1.1M cached embeddings (1,000 queries held out as in semsearch bench), swept over expansion_search.

Run: flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/default_sweep.py  (needs the cache semsearch bench made)
"""
import json, sys, time
from pathlib import Path
import numpy as np
from semsearch.bench import Embeddings, hold_out, chunks
from semsearch.backends import create_index, backend_class
from semsearch.evaluate import recall_at_k

cache = Path("/work/cache/embeddings")
stem = "headlines-1m.use-multilingual.0653e0406c7c"
emb = Embeddings(cache / f"{stem}.f16.npy", np.load(cache / f"{stem}.ids.npy"))
split = hold_out(emb, cache, 1000)
rows = len(emb.ids)
is_query = np.zeros(rows, dtype=bool); is_query[split.query_rows] = True
queries = np.concatenate([b for s, b in chunks(emb.vectors_path, rows) for b in [b[is_query[s:s+len(b)]]]])
work = Path("/work/cache/es-sweep"); work.mkdir(exist_ok=True)
if not (work / "index.usearch").exists():
    index = create_index("usearch", 512)
    t = time.perf_counter(); cpu = time.process_time()
    for start, block in chunks(emb.vectors_path, rows):
        keep = ~is_query[start:start+len(block)]
        index.add(emb.ids[start:start+len(block)][keep], block[keep])
        print(f"added {start+len(block):,}", file=sys.stderr, flush=True)
    print(json.dumps({"build_s": time.perf_counter()-t, "build_cpu_s": time.process_time()-cpu}), flush=True)
    index.save(work)
opened = backend_class("usearch").load(work, 512, {}, mmap=True)
for es in [64, 96, 128, 160, 192, 256]:
    found, _ = opened.search(queries, 10, expansion_search=es)
    times = []
    for q in queries:
        t = time.perf_counter(); opened.search(q[None, :], 10, expansion_search=es); times.append(time.perf_counter() - t)
    times = np.array(times)
    print(json.dumps({"expansion_search": es, "recall": round(recall_at_k(found, split.truth, 10), 4),
                      "qps": round(len(times)/times.sum()), "p50_ms": round(1000*np.median(times), 3), "p99_ms": round(1000*np.percentile(times, 99), 3)}), flush=True)
