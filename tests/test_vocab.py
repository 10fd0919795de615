"""The one place that pins the literal result-column vocabulary (CONTRIBUTING: Result columns).

Other tests compare frames against ``imrstats._vocab.ESTIMATE_COLUMNS``; this test makes sure
that the vocabulary itself does not drift.
"""

from __future__ import annotations

from imrstats._vocab import ESTIMATE_COLUMNS


def test_estimate_columns_literal_vocabulary():
    assert ESTIMATE_COLUMNS == (
        "term",
        "estimate",
        "std_error",
        "statistic",
        "df",
        "p_value",
        "ci_low",
        "ci_high",
    )
