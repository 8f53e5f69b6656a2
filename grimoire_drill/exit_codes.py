"""The drill's exit codes (DESIGN.md): one map from a run's outcome to the code, for the CLI and the plugin.

Why one place: ``grimoire-drill run`` and ``pytest drills/ --drill-backups`` must end with the
same code for the same run, so a cron job or a CI step reads one meaning whichever started it.
"""

from __future__ import annotations

EXIT_PASSED, EXIT_FAILED, EXIT_HARNESS, EXIT_MIGRATION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
OUTCOME_EXITS = {"passed": EXIT_PASSED, "failed": EXIT_FAILED, "error": EXIT_HARNESS, "migration_failed": EXIT_MIGRATION}
EXIT_MEANINGS = (  # what --help says of each code
    (EXIT_PASSED, "the backup passed the drill"),
    (EXIT_FAILED, "the backup is bad: missing, unreadable, corrupt, stale or incomplete"),
    (EXIT_HARNESS, "the drill could not test it: bad usage or arguments, no engine, a timeout"),
    (EXIT_MIGRATION, "--then: the command failed or the checks failed after it"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C or SIGTERM); everything the run started was removed"),
)


def exit_code(outcome: str | None, *, interrupted: bool, timed_out: str | None = None) -> int:
    """The code of a run that ended with ``outcome`` (None: no summary was made).

    A timeout is the harness's (2: we could not finish testing), a Ctrl-C or SIGTERM is 130,
    a run that made no summary is 2.
    """
    if timed_out is not None:
        return EXIT_HARNESS
    if interrupted:
        return EXIT_INTERRUPTED
    if outcome is None:
        return EXIT_HARNESS
    return OUTCOME_EXITS[outcome]
