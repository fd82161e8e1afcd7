"""``python -m jobqueue``: the same as the ``jobqueue`` command."""

from jobqueue.cli import app

app()
