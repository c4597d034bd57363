"""Test bases that authors of embedding providers and knowledge sources import to prove their
plugins keep the RAG contracts (:mod:`rag.testing.contracts`). See docs/testing.md."""
