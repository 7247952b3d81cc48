"""Upstream engines: which deployment answers (providers, pool, tiers), the calls to AI Studio and Vertex AI
(LiteLLM's request build, our client and stream reader), context caches and compaction."""
