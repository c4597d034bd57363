"""Retrieval-augmented generation: sources, embeddings, hybrid pgvector index, query API."""
