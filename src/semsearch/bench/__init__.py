"""``semsearch bench``: every backend and reducer setting measured on the same held-out queries.

grids (what to measure) -> embedding_cache (a corpus embedded once) -> truth (held-out queries and
their exact neighbours) -> measure (one setting, in its own process) -> results (.json and .csv);
run ties them together. evaluate and relevance are the measures the benchmarks share.
"""

from semsearch.bench.grids import GRIDS, Setting, select_settings
from semsearch.bench.results import default_results_path
from semsearch.bench.run import run_benchmark

__all__ = ["GRIDS", "Setting", "default_results_path", "run_benchmark", "select_settings"]
