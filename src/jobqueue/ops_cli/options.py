"""The options every operator command takes: where the server is, and how to print."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The server's base URL (default: JOBQUEUE_URL, else http://127.0.0.1:3000).",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Key sent as 'Authorization: Bearer <key>' (default: JOBQUEUE_API_KEY).",
        show_default=False,
    ),
]
AsJson = Annotated[
    bool,
    typer.Option("--json", help="Print the API's JSON on stdout instead of a table, for scripts."),
]
JobIdArg = Annotated[str, typer.Argument(help="The job's id (a UUID).", show_default=False)]
Limit = Annotated[int, typer.Option(min=1, max=500, help="Most entries to show.")]
Offset = Annotated[int, typer.Option(min=0, help="Entries to skip (newest first).")]


@dataclass(frozen=True, slots=True)
class Target:
    """Which server a command talks to, with which key, and how it prints the answer."""

    url: str | None
    api_key: str | None
    as_json: bool
