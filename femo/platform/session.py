"""The one place a SparkSession is configured.

:func:`spark_conf` turns settings into Spark properties (pure, testable without a JVM);
:func:`configure_builder` only decorates a ``SparkSession.Builder`` with them, the way delta-io's
``configure_spark_with_delta_pip`` does; :func:`build_session` starts or returns the session.
``spark-submit.sh`` passes the same properties on the command line (see
:mod:`femo.platform.submit`), so a job behaves the same whether Python or ``spark-submit``
starts the JVM.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from femo.platform.errors import MissingPrerequisiteError
from femo.platform.files import local_path
from femo.platform.home import claim_home
from femo.platform.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Jars femo needs on the classpath, by artifact-name prefix.
REQUIRED_JARS: tuple[str, ...] = ("delta-spark_", "delta-storage-")


def under_spark_submit() -> bool:
    """True when this Python process was started by ``spark-submit`` (the JVM already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def find_jars(jars_dir: str) -> list[str]:
    """The jars in ``jars_dir``, checking that every one of :data:`REQUIRED_JARS` is there.

    Raises:
        MissingPrerequisiteError: the folder or a required jar is missing.
    """
    folder = Path(jars_dir)
    jars = sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []
    missing = [
        prefix for prefix in REQUIRED_JARS if not any(Path(j).name.startswith(prefix) for j in jars)
    ]
    if missing:
        raise MissingPrerequisiteError(
            f"spark.jars_dir={jars_dir} lacks {', '.join(p.rstrip('_-') for p in missing)} jars: "
            "run `make jars`, or point spark.jars_dir (FEMO_JARS_DIR) at a folder that has them"
        )
    return jars


def driver_java_options(settings: Settings, log4j_conf: str | None = None) -> str:
    """JVM options for the driver: where Derby writes its log, and the log4j2 file if any."""
    options = []
    if settings.catalog.metastore_uri is None:
        options.append(f"-Dderby.system.home={settings.metastore_dir}")
    if log4j_conf:
        options.append(f"-Dlog4j2.configurationFile=file:{log4j_conf}")
    return " ".join(options)


def spark_environment(settings: Settings) -> dict[str, str]:
    """Environment variables the driver's JVM needs from ``settings`` (a value already in the
    environment wins): ``SPARK_LOCAL_IP`` from ``spark.local_ip``, so that Spark neither looks
    the host name up nor warns that it resolves to a loopback address."""
    return {"SPARK_LOCAL_IP": settings.spark.local_ip} if settings.spark.local_ip else {}


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark property femo sets, as strings. Pure: no JVM, no files touched but the jars.

    Static properties (catalog, warehouse, metastore, extensions, jars) are all here, so they are
    set once, before the session exists.
    """
    conf: dict[str, str] = {
        "spark.app.name": settings.spark.app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": settings.warehouse_dir,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(
            settings.spark.arrow_max_records_per_batch
        ),
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.ui.showConsoleProgress": str(settings.spark.show_progress).lower(),
        "spark.driver.memory": settings.spark.driver_memory,
        # Delta: keep MERGE/UPDATE results deterministic and logs free of retention warnings.
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
    }
    if settings.spark.local_ip:
        conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = settings.spark.local_ip
    if settings.catalog.metastore_uri:
        conf["spark.hadoop.hive.metastore.uris"] = settings.catalog.metastore_uri
    else:
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={settings.metastore_dir}/metastore_db;create=true"
        )
    if settings.spark.jars_dir:
        conf["spark.jars"] = ",".join(find_jars(settings.spark.jars_dir))
    if settings.spark.env_archive:
        conf["spark.archives"] = f"{settings.spark.env_archive}#environment"
        conf["spark.pyspark.python"] = "./environment/bin/python"
    else:
        conf["spark.pyspark.python"] = settings.spark.python or sys.executable
    java_options = driver_java_options(settings)
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    conf.update(settings.spark.conf)
    return conf


def configure_builder(builder: SparkSession.Builder, settings: Settings) -> SparkSession.Builder:
    """Decorate ``builder`` with femo's properties; the master only when not under spark-submit."""
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    if not under_spark_submit():
        builder = builder.master(settings.spark.master)
    return builder.enableHiveSupport()


def build_session(settings: Settings) -> SparkSession:
    """Start (or return) the session for ``settings``.

    A session that already exists is returned only if its warehouse is the one ``settings`` asks
    for: static properties cannot change after start, and silently ignoring them would write
    tables into the wrong place.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        current = active.conf.get("spark.sql.warehouse.dir") or ""
        wanted = settings.warehouse_dir
        if local_path(current).rstrip("/") != local_path(wanted).rstrip("/"):
            raise MissingPrerequisiteError(
                f"a Spark session with warehouse {current} is already running; "
                f"cannot switch to {wanted} (stop it first)"
            )
        return active
    # Embedded Derby admits one JVM: say so now rather than fail in Derby's stack traces.
    claim_home(settings)
    if not under_spark_submit():
        for name, value in spark_environment(settings).items():
            os.environ.setdefault(name, value)
        # A Python-started SparkContext takes its workers' interpreter from PYSPARK_PYTHON, not
        # from spark.pyspark.python (spark-submit translates that one itself).
        os.environ.setdefault("PYSPARK_PYTHON", settings.spark.python or sys.executable)
    spark = configure_builder(SparkSession.builder, settings).getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    log.info(
        "Spark %s session on %s, warehouse %s",
        spark.version,
        spark.sparkContext.master,
        settings.warehouse_dir,
    )
    return spark


@contextmanager
def runtime_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set the runtime SQL property ``key`` to ``value`` for the block, then put it back."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
