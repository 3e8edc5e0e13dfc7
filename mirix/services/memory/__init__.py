"""Long-term memory: per-type declarations, one generic manager, search and retrieval."""
