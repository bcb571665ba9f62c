"""Bad input: every case names the file and the line."""

import zipfile

import pytest

from graphrec.data.io import Field, Source, read_table
from graphrec.errors import DataFormatError

FIELDS = [Field("user", "int"), Field("item", "int"), Field("rating", "float"), Field("timestamp", "int")]


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return Source(p)


def test_reads_exact_values(tmp_path):
    src = write(tmp_path, "u.data", b"1\t10\t5\t100\n2\t20\t3.5\t200\n")
    df = read_table(src, FIELDS, "\t")
    assert df["user"].tolist() == [1, 2]
    assert df["rating"].tolist() == [5.0, 3.5]
    assert df["timestamp"].dtype == "int64"


def test_multichar_separator(tmp_path):
    src = write(tmp_path, "ratings.dat", b"1::10::5::100\n2::20::3::200\n")
    df = read_table(src, FIELDS, "::")
    assert df["item"].tolist() == [10, 20]


def test_too_few_fields_names_line(tmp_path):
    src = write(tmp_path, "u.data", b"1\t10\t5\t100\n2\t20\t3\n3\t30\t4\t300\n")
    with pytest.raises(DataFormatError, match=r"u\.data line 2: expected 4 tab-separated fields .*found 3 fields"):
        read_table(src, FIELDS, "\t")


def test_too_many_fields_names_line(tmp_path):
    src = write(tmp_path, "u.data", b"1\t10\t5\t100\n2\t20\t3\t200\t9\n")
    with pytest.raises(DataFormatError, match=r"u\.data line 2: expected 4 .*found 5 fields"):
        read_table(src, FIELDS, "\t")


def test_non_numeric_id(tmp_path):
    src = write(tmp_path, "u.data", b"1\t10\t5\t100\nabc\t20\t3\t200\n")
    with pytest.raises(DataFormatError, match=r"line 2: field 'user' expected an integer, found 'abc'"):
        read_table(src, FIELDS, "\t")


def test_non_numeric_rating(tmp_path):
    src = write(tmp_path, "u.data", b"1\t10\t5\t100\n2\t20\t3\t200\n3\t30\tfive\t300\n")
    with pytest.raises(DataFormatError, match=r"line 3: field 'rating' expected a number, found 'five'"):
        read_table(src, FIELDS, "\t")


def test_empty_and_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"u\.data: file is empty"):
        read_table(write(tmp_path, "u.data", b"\n\n"), FIELDS, "\t")
    from graphrec.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=r"nothing\.data: file not found"):
        read_table(Source(tmp_path / "nothing.data"), FIELDS, "\t")


def test_wrong_encoding_names_line(tmp_path):
    src = write(tmp_path, "ratings.csv", b"userId,movieId,rating,timestamp\n1,2,3,4\n5,6,7,8\n" + b"\xff\xfe,1,2,3\n")
    fields = [Field("userId", "int"), Field("movieId", "int"), Field("rating", "float"), Field("timestamp", "int")]
    with pytest.raises(DataFormatError, match=r"ratings\.csv line 4: bytes .* not valid utf-8"):
        read_table(src, fields, ",", header=True)


def test_wrong_header(tmp_path):
    src = write(tmp_path, "ratings.csv", b"user,movie,rating,timestamp\n1,2,3,4\n")
    fields = [Field("userId", "int"), Field("movieId", "int"), Field("rating", "float"), Field("timestamp", "int")]
    with pytest.raises(DataFormatError, match=r"line 1: expected header 'userId,movieId,rating,timestamp', found 'user,movie"):
        read_table(src, fields, ",", header=True)


def test_missing_required_string(tmp_path):
    src = write(tmp_path, "u.user", b"1|24|M|technician|85711\n2|53||other|94043\n")
    fields = [Field("user", "int"), Field("age", "int"), Field("gender", "str"), Field("occupation", "str"), Field("zip", "str")]
    with pytest.raises(DataFormatError, match=r"u\.user line 2: field 'gender' is empty"):
        read_table(src, fields, "|")


def test_zip_member(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/u.data", "1\t2\t3\t4\n1\t2\tbad\t4\n")
    with pytest.raises(DataFormatError, match=r"x\.zip:x/u\.data line 2"):
        read_table(Source(archive, "x/u.data"), FIELDS, "\t")
