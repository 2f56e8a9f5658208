"""LogPrinter: a single-worker run's log comes out as it was written; a multi-worker run's lines each
say their worker, however the workers' chunks interleave."""

from __future__ import annotations

import pytest

from runner.cli.streaming import LogPrinter, tail_offsets


def printed(capsysbinary: pytest.CaptureFixture[bytes]) -> bytes:
    return capsysbinary.readouterr().out


def test_a_single_worker_log_is_written_byte_for_byte(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    printer = LogPrinter("r1", prefix=False)
    printer.write(1, b"half a li", 0)
    printer.write(1, b"ne\n\xff\xfe raw", 9)
    printer.flush()
    assert printed(capsysbinary) == b"half a line\n\xff\xfe raw"


def test_the_run_prefix_alone_without_workers(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    printer = LogPrinter("r1", prefix=True)
    printer.write(1, b"one\ntw", 0)
    printer.write(1, b"o\n", 6)
    assert printed(capsysbinary) == b"[r1] one\n[r1] two\n"


def test_each_workers_lines_are_prefixed_and_kept_whole(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    printer = LogPrinter("r1", prefix=False)
    printer.workers = 2
    printer.write(1, b"zero sta", 0, worker=0)
    printer.write(1, b"one\none ha", 0, worker=1)
    printer.write(1, b"rts\n", 8, worker=0)
    printer.write(1, b"lf", 10, worker=1)
    printer.flush()
    assert printed(capsysbinary).splitlines() == [
        b"[worker 1] one",
        b"[worker 0] zero starts",
        b"[worker 1] one half",
    ]


def test_a_second_pass_writes_only_what_is_new_per_worker(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    printer = LogPrinter("r1", prefix=True)
    printer.workers = 2
    printer.write(1, b"a\n", 0, worker=0)
    printer.write(1, b"b\n", 0, worker=1)
    printer.write(1, b"a\nc\n", 0, worker=0)  # the drain reads worker 0's log again from its start
    assert printed(capsysbinary).splitlines() == [
        b"[r1] [worker 0] a",
        b"[r1] [worker 1] b",
        b"[r1] [worker 0] c",
    ]


def test_tail_takes_the_last_lines_of_every_attempt_and_worker() -> None:
    logs = {(1, 0): b"a\nb\n", (1, 1): b"c\n", (2, 0): b"d\n", (2, 1): b"e\nf\n"}
    assert tail_offsets(logs, 3) == {(1, 0): 4, (1, 1): 2, (2, 0): 0, (2, 1): 0}
    assert tail_offsets({1: b"x\ny\n"}, 1) == {1: 2}
