"""Benchmarks and the performance budget: ``uv run python -m bench [--quick]`` (see bench/README.md)."""
