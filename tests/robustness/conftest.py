"""Counts the generated cases of the robustness tests and the distinct error messages they end in.

Each property test calls ``outcomes.record(test, result)``; the summary is printed at the end
of the pytest run (``-rA`` not needed) so that the numbers can be reported.
"""
import collections
import re

import pytest


class Outcomes:
    def __init__(self):
        self.cases = collections.Counter()
        self.messages = collections.defaultdict(collections.Counter)

    def record(self, test, error=None):
        """Count one generated case of ``test``; ``error`` is the DataError/ValueError it ended in, if any."""
        self.cases[test] += 1
        if error is not None:
            self.messages[test][_normalise(getattr(error, "message", str(error)))] += 1


def _normalise(message):
    """The message without its variable parts (quoted values, numbers, file names)."""
    message = re.sub(r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]|\([^)]*\)|\{[^}]*\}", "…", message)
    return re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "#", message.splitlines()[0] if message else message)[:110]


OUTCOMES = Outcomes()


@pytest.fixture(scope="session")
def outcomes():
    return OUTCOMES


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES.cases:
        return
    tr = terminalreporter
    tr.section("robustness: generated cases and distinct error messages")
    for test, n in sorted(OUTCOMES.cases.items()):
        msgs = OUTCOMES.messages[test]
        tr.write_line(f"{test}: {n} cases, {sum(msgs.values())} ended in an error, {len(msgs)} distinct messages")
        for msg, count in msgs.most_common():
            tr.write_line(f"    {count:5d}  {msg}")
    total = sum(len(m) for m in OUTCOMES.messages.values())
    tr.write_line(f"total: {sum(OUTCOMES.cases.values())} generated cases, {total} distinct messages (per test)")
