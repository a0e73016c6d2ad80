"""jobs/query.py in-process, with the shared session and settings injected."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from femo.platform.errors import MissingPrerequisiteError
from femo.platform.settings import Settings
from jobs.query import Query

from .conftest import TEST_OVERRIDES, make_settings


def run(spark: SparkSession, settings: Settings, *argv: str) -> str:
    parser = argparse.ArgumentParser()
    Query.add_arguments(parser)
    out = io.StringIO()
    assert Query(settings, spark, out=out).run(parser.parse_args(list(argv))) == 0
    return out.getvalue()


def test_sql_as_json_lines(spark: SparkSession, catalog: Settings) -> None:
    out = run(
        spark,
        catalog,
        "--sql",
        "SELECT emotion_id, name FROM emotions " "WHERE emotion_id IN (3, 7) ORDER BY emotion_id",
        "--format",
        "json",
    )
    assert [json.loads(line) for line in out.splitlines()] == [
        {"emotion_id": 3, "name": "happy"},
        {"emotion_id": 7, "name": "contempt"},
    ]


def test_file_with_named_parameters(spark: SparkSession, catalog: Settings, tmp_path: Path) -> None:
    sql = tmp_path / "by_valence.sql"
    sql.write_text(
        "-- emotions of one valence\nSELECT name FROM emotions\n"
        "WHERE valence = :valence AND emotion_id < :below ORDER BY emotion_id;\n"
    )
    out = run(
        spark,
        catalog,
        "--file",
        str(sql),
        "--param",
        "valence=negative",
        "--param",
        "below=3",
        "--format",
        "csv",
    )
    assert out.splitlines() == ["name", "angry", "disgust", "fear"]


def test_parameter_values_are_bound_not_spliced(spark: SparkSession, catalog: Settings) -> None:
    out = run(
        spark,
        catalog,
        "--sql",
        "SELECT count(*) AS n FROM emotions WHERE name = :name",
        "--param",
        "name=x' OR '1'='1",
        "--format",
        "json",
    )
    assert json.loads(out) == {"n": 0}


def test_limit_and_table_format(spark: SparkSession, catalog: Settings) -> None:
    out = run(
        spark,
        catalog,
        "--sql",
        "SELECT emotion_id, name FROM emotions ORDER BY emotion_id",
        "--limit",
        "2",
    )
    lines = out.splitlines()
    assert [line.split() for line in lines] == [
        ["emotion_id", "name"],
        ["0", "angry"],
        ["1", "disgust"],
    ]


def test_main_turns_bad_sql_into_one_line(spark: SparkSession, catalog: Settings, capsys) -> None:
    argv = [
        "--sql",
        "SELEC name FROM emotions",
        *[a for o in TEST_OVERRIDES for a in ("--set", o)],
        "--set",
        f"home={catalog.home}",
    ]
    assert Query.main(argv) == 2  # the caller's SQL: fix, then rerun
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'")
    # the shared session survives: main did not start it, so it does not stop it
    assert spark.sql("SELECT 1 AS x").first().x == 1


def test_main_unknown_table_and_bad_setting(spark: SparkSession, catalog: Settings, capsys) -> None:
    base = ["--set", f"home={catalog.home}", *[a for o in TEST_OVERRIDES for a in ("--set", o)]]
    assert Query.main(["--sql", "SELECT * FROM no_such_table", *base]) == 2
    assert "error: [TABLE_OR_VIEW_NOT_FOUND]" in capsys.readouterr().err
    assert Query.main(["--sql", "SELECT 1", "--set", "spark.shuffle_partitions=lots"]) == 2
    err = capsys.readouterr().err
    assert "spark.shuffle_partitions: Input should be a valid integer" in err


def test_query_before_init_names_the_fix(spark: SparkSession, tmp_path: Path) -> None:
    other = make_settings(tmp_path, "catalog.database=not_created_yet")
    with pytest.raises(MissingPrerequisiteError, match="run jobs/init_catalog.py first"):
        run(spark, other, "--sql", "SELECT 1")
