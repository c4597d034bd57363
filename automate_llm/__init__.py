"""LLM gateway: providers, versioned prompts, metering and AI workflow steps."""
