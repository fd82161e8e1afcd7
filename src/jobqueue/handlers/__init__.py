"""Job handlers: the registry, the context a handler receives, and the built-in handlers."""
