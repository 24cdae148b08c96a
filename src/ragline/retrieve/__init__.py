"""Query-time retrieval over any store: dense, BM25 and their fusion."""
