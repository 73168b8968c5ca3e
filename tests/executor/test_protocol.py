from executor.log_capture import LogTail
from executor.protocol import Log, Raw, Record, Result, State, encode, parse_line


def test_protocol_messages_round_trip():
    for message in (
        Record("customers", {"id": 1}),
        State("customers", "2030-01-01"),
        Log("hi", "warning"),
        Result("succeeded", {"n": 1}),
    ):
        assert parse_line(encode(message)) == message


def test_anything_else_on_stdout_becomes_a_log_line():
    for line in (
        "plain text\n",
        "[1, 2]",
        '{"type": "record", "entity": 5, "data": {}}',
        '{"type": "weird"}',
        "{bad",
    ):
        assert parse_line(line) == Raw(line.rstrip("\n"))


def test_log_tail_keeps_the_last_lines_within_its_byte_cap_and_masks_secrets():
    tail = LogTail(max_lines=3, max_bytes=10_000, secrets=["hunter22"])
    for i in range(5):
        tail.add(f"line {i} password=hunter22")
    assert tail.lines() == [f"[stdout] line {i} password=***" for i in (2, 3, 4)]
    assert tail.dropped == 2
    small = LogTail(max_lines=100, max_bytes=50)
    for _ in range(10):
        small.add("x" * 20)
    assert sum(len(line) for line in small.lines()) <= 50


def test_unflushed_lines_are_handed_out_once():
    tail = LogTail()
    tail.add("a")
    assert tail.take_unflushed() == ["[stdout] a"]
    assert tail.take_unflushed() == []
    tail.add("b", stream="stderr")
    assert tail.take_unflushed() == ["[stderr] b"]
