"""The HTTP API (FastAPI), wire-compatible with the Node service."""
