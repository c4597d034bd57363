"""LLM provider plugins (entry-point group ``django_automate.llm.providers``)."""
