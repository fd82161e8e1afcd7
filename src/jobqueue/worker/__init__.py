"""The worker: runs claimed jobs through their handlers and records outcomes."""
