"""SQL files and statements, without Spark."""

from __future__ import annotations

import pytest

from femo.platform.errors import SqlFileError
from femo.platform.sql import bind, describe, insights, markers, read_sql, sql_root, statement


def test_statement_strips_one_trailing_semicolon_and_comments_stay() -> None:
    assert statement("SELECT 1;") == "SELECT 1"
    assert statement("  SELECT 1 ;  \n-- done\n") == "SELECT 1"
    assert statement("-- a comment\nSELECT 1") == "-- a comment\nSELECT 1"


def test_semicolons_inside_literals_and_comments_do_not_count() -> None:
    text = "SELECT 'a;b' AS x, `c;d` -- e;f\n/* g;\nh */ FROM t"
    assert statement(text) == text


@pytest.mark.parametrize("text", ["SELECT 1; SELECT 2", "SELECT 1;\nDROP TABLE t;"])
def test_two_statements_are_refused(text: str) -> None:
    with pytest.raises(SqlFileError, match="one statement"):
        statement(text)


@pytest.mark.parametrize("text", ["", "   ", "-- only a comment", ";", "/* x */ ;"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(SqlFileError, match="empty"):
        statement(text)


def test_read_sql_by_name() -> None:
    assert "CREATE DATABASE IF NOT EXISTS IDENTIFIER(:database)" in read_sql("ddl/database")
    assert (sql_root() / "seed" / "emotions.sql").is_file()


@pytest.mark.parametrize("name", ["../etc/passwd", "Seed/Emotions", "seed/emotions.sql", ""])
def test_read_sql_refuses_odd_names(name: str) -> None:
    with pytest.raises(SqlFileError, match="bad SQL name"):
        read_sql(name)


def test_read_sql_names_a_missing_file() -> None:
    with pytest.raises(SqlFileError, match="no SQL file seed/nothing.sql"):
        read_sql("seed/nothing")


def test_every_insight_declares_the_parameters_it_uses() -> None:
    for name, doc in insights().items():
        assert markers(read_sql(name)) == {p.name for p in doc.params}, name
        assert doc.title, f"{name}: its first comment line should say what it answers"


def test_describe_reads_title_and_parameter_defaults() -> None:
    doc = describe("-- Images of a side.\n-- :side = 48  pixels\n-- :who = ''  a source\nSELECT 1")
    assert doc.title == "Images of a side."
    assert doc.defaults() == {"side": 48, "who": ""}
    assert bind("-- t\n-- :side = 48  px\nSELECT :side", {"side": 96}) == {"side": 96}
    assert markers("SELECT :a, ':b', x::int -- :c\nFROM t WHERE y = :d") == {"a", "d"}
