"""Reading a collection: how a query becomes ranked document ids (semantic, keyword, hybrid, filtered)."""
