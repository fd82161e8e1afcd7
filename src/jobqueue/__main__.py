"""``python -m jobqueue`` and the ``jobqueue`` command."""

from jobqueue.startup import import_structlog


def main() -> None:
    """Run the ``jobqueue`` command line."""
    import_structlog()
    from jobqueue.cli import app

    app()


if __name__ == "__main__":
    main()
