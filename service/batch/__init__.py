"""Message Batches and Files: the Anthropic endpoints, on Gemini's Batch and Files APIs, and their tables."""
