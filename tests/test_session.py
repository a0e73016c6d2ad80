"""The session builder: properties from settings (pure) and the live shared session."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from femo.platform.errors import MissingPrerequisiteError
from femo.platform.session import build_session, find_jars, spark_conf, spark_environment
from femo.platform.settings import Settings, load_settings

from .conftest import make_settings


def test_conf_puts_catalog_and_metastore_under_home(tmp_path: Path) -> None:
    conf = spark_conf(make_settings(tmp_path))
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == (
        "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert conf["spark.sql.catalogImplementation"] == "hive"
    assert conf["spark.sql.warehouse.dir"] == str(tmp_path / "warehouse")
    assert conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        f"jdbc:derby:;databaseName={tmp_path}/metastore/metastore_db;create=true"
    )
    assert f"-Dderby.system.home={tmp_path}/metastore" in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.sql.execution.arrow.maxRecordsPerBatch"] == "256"
    assert conf["spark.ui.enabled"] == "false"  # from the test overrides, passed verbatim


def test_conf_ships_both_delta_jars(tmp_path: Path) -> None:
    jars = spark_conf(make_settings(tmp_path))["spark.jars"].split(",")
    names = sorted(Path(j).name for j in jars)
    assert [n.split("-")[0] + "-" + n.split("-")[1][:7] for n in names] == [
        "delta-spark_2",
        "delta-storage",
    ]
    assert all(Path(j).is_file() for j in jars)


def test_shared_metastore_replaces_derby(tmp_path: Path) -> None:
    conf = spark_conf(make_settings(tmp_path, "catalog.metastore_uri=thrift://meta:9083"))
    assert conf["spark.hadoop.hive.metastore.uris"] == "thrift://meta:9083"
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in conf
    assert "derby" not in conf.get("spark.driver.extraJavaOptions", "")


def test_env_archive_sets_the_executor_python(tmp_path: Path) -> None:
    conf = spark_conf(make_settings(tmp_path, "spark.env_archive=/x/env.tar.gz"))
    assert conf["spark.archives"] == "/x/env.tar.gz#environment"
    assert conf["spark.pyspark.python"] == "./environment/bin/python"


def test_missing_jars_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "delta-storage-3.3.2.jar").write_bytes(b"")
    with pytest.raises(MissingPrerequisiteError, match=r"lacks delta-spark jars: run `make jars`"):
        find_jars(str(tmp_path / "jars"))
    with pytest.raises(MissingPrerequisiteError, match="lacks delta-spark, delta-storage"):
        spark_conf(load_settings(None, [f"spark.jars_dir={tmp_path}/none"], environ={}))


def test_live_session_has_delta_hive_and_arrow(spark: SparkSession, settings: Settings) -> None:
    assert spark.conf.get("spark.sql.catalogImplementation") == "hive"
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "256"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.master == "local[2]"
    spark.sql("CREATE DATABASE IF NOT EXISTS session_check")
    spark.sql("CREATE TABLE IF NOT EXISTS session_check.t (x INT) USING DELTA")
    spark.sql("INSERT INTO session_check.t VALUES (1), (2)")
    location = spark.sql("DESCRIBE DETAIL session_check.t").first()
    assert location.format == "delta"
    assert location.location.removeprefix("file:").startswith(settings.warehouse_dir)
    # pandas UDFs run through Arrow in the venv's Python workers
    out = spark.range(4).mapInPandas(
        lambda frames: (f.assign(id=f.id * 2) for f in frames), "id long"
    )
    assert sorted(r.id for r in out.collect()) == [0, 2, 4, 6]
    spark.sql("DROP DATABASE session_check CASCADE")


def test_build_session_returns_the_running_one(spark: SparkSession, settings: Settings) -> None:
    assert build_session(settings) is spark


def test_build_session_refuses_another_warehouse(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(MissingPrerequisiteError, match="already running"):
        build_session(make_settings(tmp_path))


def test_local_ip_binds_and_advertises_the_driver(tmp_path: Path) -> None:
    local = make_settings(tmp_path)  # conf/local.yaml: 127.0.0.1
    conf = spark_conf(local)
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert spark_environment(local) == {"SPARK_LOCAL_IP": "127.0.0.1"}
    cluster = make_settings(tmp_path, "spark.local_ip=null")
    assert "spark.driver.host" not in spark_conf(cluster)
    assert spark_environment(cluster) == {}


def test_submit_helper_writes_the_driver_environment(tmp_path: Path) -> None:
    from femo.platform.submit import main

    env = tmp_path / "env"
    code = main(
        [
            "--zip",
            str(tmp_path / "femo.zip"),
            "--env",
            str(env),
            "--",
            "--set",
            "spark.local_ip=10.1.2.3",
        ]
    )
    assert code == 0
    assert env.read_text(encoding="utf-8") == "SPARK_LOCAL_IP=10.1.2.3\n"
