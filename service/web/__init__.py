"""The HTTP surface: routes, request hooks, errors in Anthropic's shape, streaming, CORS, connections and
the worker's lifecycle."""
