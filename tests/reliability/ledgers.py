"""The ``ledger`` handlers' files: which process ran which job, how often."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

HANDLERS_DIR = Path(__file__).parent / "handler_modules"
LEDGER_HANDLERS = {"JOBQUEUE_HANDLERS": "ledger_handlers", "PYTHONPATH": str(HANDLERS_DIR)}
"""Settings that load ``ledger`` and ``ledger-slow`` into a jobqueue process."""


def ledger_dir_settings(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh ledger directory and the settings that make the handlers write there."""
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    return ledger_dir, {**LEDGER_HANDLERS, "LEDGER_DIR": str(ledger_dir)}


def read_ledgers(ledger_dir: Path) -> dict[str, Counter[str]]:
    """Per worker process (by pid): how often it ran each job id."""
    return {
        path.stem: Counter(line.split()[0] for line in path.read_text().splitlines())
        for path in ledger_dir.glob("*.ledger")
    }


def ledger_of(ledger_dir: Path, pid: int) -> Counter[str]:
    """How often the process ``pid`` ran each job."""
    return read_ledgers(ledger_dir).get(str(pid), Counter())
