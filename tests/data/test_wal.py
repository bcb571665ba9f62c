"""The serving log: checksummed records, a torn last record dropped, a damaged middle one refused."""

import logging

import pytest

from graphrec.data.wal import EventLog, decode_record, encode_record
from graphrec.errors import GraphrecError


def test_record_format_by_hand():
    line = encode_record({"op": "events", "events": []})
    assert line == b'%08x {"op":"events","events":[]}\n' % __import__("zlib").crc32(b'{"op":"events","events":[]}')
    assert decode_record(line) == {"op": "events", "events": []}
    assert decode_record(line[:-1]) is None  # no newline: torn
    assert decode_record(line.replace(b"events", b"evenTs", 1)) is None  # checksum differs


def test_append_then_replay(tmp_path):
    with EventLog(tmp_path / "s" / "events.log") as log:
        assert log.replay() == []
        with log.locked():
            log.append({"n": 1})
            log.append({"n": 2})
    with EventLog(tmp_path / "s" / "events.log") as again:
        assert again.replay() == [{"n": 1}, {"n": 2}] and again.records == 2


@pytest.mark.parametrize("cut", [1, 5, 11, 20])
def test_a_torn_last_record_is_dropped_with_a_warning_and_cut_off(tmp_path, caplog, cut):
    path = tmp_path / "events.log"
    good = encode_record({"n": 1}) + encode_record({"n": 2})
    torn = encode_record({"n": 3, "pad": "x" * 20})[:cut]
    path.write_bytes(good + torn)
    with caplog.at_level(logging.WARNING), EventLog(path) as log:
        assert log.replay() == [{"n": 1}, {"n": 2}]
        assert "torn last record" in caplog.text
        assert path.read_bytes() == good  # cut back to the last complete record
        with log.locked():
            log.append({"n": 4})
    with EventLog(path) as again:
        assert again.replay() == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_a_damaged_record_before_the_last_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "events.log"
    lines = [encode_record({"n": i}) for i in range(3)]
    lines[1] = lines[1].replace(b'"n"', b'"m"')
    path.write_bytes(b"".join(lines))
    with EventLog(path) as log, pytest.raises(GraphrecError, match=r"events.log line 2: damaged record"):
        log.replay()
    assert path.read_bytes() == b"".join(lines)  # nothing is thrown away


def test_two_processes_share_one_log(tmp_path):
    path = tmp_path / "events.log"
    with EventLog(path) as a, EventLog(path) as b:
        a.replay(), b.replay()
        with a.locked():
            a.append({"from": "a"})
        assert b.has_new() and b.read_new() == [{"from": "a"}] and not b.has_new()
        with open(path, "ab") as f:  # another process is half-way through a record
            f.write(encode_record({"from": "c"})[:7])
        assert b.read_new() == []  # an incomplete tail waits
        with open(path, "ab") as f:
            f.write(encode_record({"from": "c"})[7:])
        assert b.read_new() == [{"from": "c"}]


def test_an_incomplete_record_of_a_dead_writer_never_swallows_the_next_one(tmp_path, caplog):
    path = tmp_path / "events.log"
    with EventLog(path) as a:
        a.replay()
        with a.locked():
            a.append({"n": 1})
        with open(path, "ab") as f:  # another worker died half-way through its record (it was never acknowledged)
            f.write(encode_record({"n": 2})[:6])
        with caplog.at_level(logging.WARNING), a.locked():
            assert a.read_new() == []
            a.append({"n": 3})
        assert "incomplete record" in caplog.text
    with EventLog(path) as again:
        assert again.replay() == [{"n": 1}, {"n": 3}]  # every acknowledged record, nothing dropped as torn


def test_records_are_ascii_so_any_string_round_trips(tmp_path):
    with EventLog(tmp_path / "events.log") as log, log.locked():
        log.append({"title": "Amélie \u2013 \U0001f3ac"})
    assert (tmp_path / "events.log").read_bytes().isascii()
    with EventLog(tmp_path / "events.log") as again:
        assert again.replay() == [{"title": "Amélie \u2013 \U0001f3ac"}]
