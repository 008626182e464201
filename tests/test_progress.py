"""Progress: one estimate for rate and time left, resumed work outside the rate, plain lines in logs."""

from __future__ import annotations

import pytest

from giftgen.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_and_time_left_agree_and_do_not_swing_with_chunky_steps():
    clock = Clock()
    p = Progress("chain", total=400, unit="problem-steps", every=0, clock=clock, terminal=False)
    lefts = []
    with p:
        for _ in range(3):  # a chain advances a whole step (100 problems) at once, every 50 s
            clock.now += 50
            p.advance(100)
            assert p.remaining() == pytest.approx((p.total - p.count) / p.rate())
            lefts.append(p.remaining())
    assert p.rate() == pytest.approx(2.0)
    assert lefts == pytest.approx([150.0, 100.0, 50.0])


def test_resumed_work_counts_in_the_total_not_in_the_rate():
    clock = Clock()
    p = Progress("chain", total=400, every=0, clock=clock, terminal=False)
    with p:
        p.skip(200)  # found done on resume, at once
        assert p.rate() == 0.0 and p.remaining() == float("inf")
        clock.now += 100
        p.advance(100)
        assert p.rate() == pytest.approx(1.0)
        assert p.remaining() == pytest.approx(100.0)


def test_a_log_gets_a_plain_line_every_so_often(capsys):
    clock = Clock()
    with Progress("verify", total=10, every=30, clock=clock, terminal=False) as p:
        for _ in range(10):
            clock.now += 10
            p.advance()
    lines = capsys.readouterr().err.splitlines()
    periodic = [line for line in lines if "left" in line]
    assert periodic == [
        "verify: 3/10 rows, 0.10 rows/s, elapsed 0:00:30, left 0:01:10",
        "verify: 6/10 rows, 0.10 rows/s, elapsed 0:01:00, left 0:00:40",
        "verify: 9/10 rows, 0.10 rows/s, elapsed 0:01:30, left 0:00:10",
    ]
    assert lines[-1] == "verify: 10 rows in 100.0s (0.1 rows/s)"


def test_periodic_lines_can_be_turned_off(capsys, monkeypatch):
    monkeypatch.setenv("GIFTGEN_PROGRESS_EVERY", "0")
    clock = Clock()
    with Progress("score", every=None, clock=clock, terminal=False) as p:
        for _ in range(5):
            clock.now += 60
            p.advance()
    assert capsys.readouterr().err.splitlines() == ["score: 5 rows in 300.0s (0.0 rows/s)"]


def test_durations_read_as_clock_times():
    assert format_duration(0) == "0:00:00"
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(float("inf")) == "-:--:--"


# --------------------------------------------------------------------------------------------------- tables

HEADER = ["arm", "seeds", "test3 greedy", "test3 sampled", "test2 greedy", "sample pass rate", "covered",
          "distinct / solved", "drift"]
ROWS = [["base", "-", "51.0", "39.8", "99.0", "-", "-", "-", "-"],
        ["control (same steps, seed pairs only)", "3", "66.3 ± 5.0", "41.9 ± 0.9", "95.7 ± 2.1", "-", "-", "-", "-"],
        ["GiFT", "3", "70.3 ± 6.1", "47.9 ± 3.2", "93.7 ± 2.5", "13.3 ± 1.1", "89.3 ± 4.0", "1.37 ± 0.07",
         "75.3 ± 1.8"]]


def test_a_wide_table_in_a_log_is_drawn_whole():
    import io

    from giftgen.tables import print_table

    out = io.StringIO()
    print_table("grid", HEADER, ROWS, file=out)
    text = out.getvalue()
    assert "…" not in text
    for cell in [*HEADER, *(c for row in ROWS for c in row)]:
        assert cell in text  # every cell whole, on one line
    assert max(len(line) for line in text.splitlines()) > 80


def test_a_wide_table_on_a_narrow_terminal_becomes_blocks():
    import io

    from giftgen.tables import print_table

    out = io.StringIO()
    print_table("grid", HEADER, ROWS, file=out, width=60)
    lines = out.getvalue().splitlines()
    assert "…" not in out.getvalue()
    assert "control (same steps, seed pairs only)" in lines
    assert "  test3 sampled: 47.9 ± 3.2" in lines and "  distinct / solved: 1.37 ± 0.07" in lines


def test_a_table_that_fits_stays_a_table():
    import io

    from giftgen.tables import print_table

    out = io.StringIO()
    print_table("t", ["a", "b"], [["x", "1"]], file=out, width=60)
    assert "┃ a" in out.getvalue() or "│ x" in out.getvalue()
