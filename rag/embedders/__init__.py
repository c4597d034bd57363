"""Built-in embedding providers (entry points of ``django_automate.embeddings``)."""
