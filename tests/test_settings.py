"""Settings: defaults, files, precedence, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from femo.platform.settings import (
    GROUP_SECTIONS,
    MAP_SECTIONS,
    SettingsError,
    flatten,
    load_settings,
    parse_override,
)

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    s = load_settings(environ={"FEMO_HOME": str(tmp_path)})
    assert s.home == str(tmp_path)
    assert s.catalog.database == "femo"
    assert s.spark.master == "local[*]"
    assert s.warehouse_dir == str(tmp_path / "warehouse")
    assert s.metastore_dir == str(tmp_path / "metastore")
    assert s.landing_dir == str(tmp_path / "landing")
    assert s.data_dir is None


def test_relative_paths_resolve_against_the_settings_file(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    conf = write(conf_dir / "a.yaml", "home: ../home\nspark:\n  jars_dir: jars\n")
    s = load_settings(conf, environ={})
    assert s.home == str(tmp_path / "home")
    assert s.spark.jars_dir == str(conf_dir / "jars")


def test_uris_are_left_alone(tmp_path: Path) -> None:
    conf = write(tmp_path / "c.yaml", "home: s3a://bucket/femo\n")
    s = load_settings(conf, environ={})
    assert s.home == "s3a://bucket/femo"
    assert s.warehouse_dir == "s3a://bucket/femo/warehouse"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("catalog.warehouse", "abfss://box@account.dfs.core.windows.net/warehouse"),
        ("home", "dbfs:/mnt/femo"),
        ("data_dir", "wasbs://box@account.blob.core.windows.net/data"),
        ("mlflow.artifact_root", "ftp://files.example.org/mlflow"),
        ("training.checkpoint_dir", "ABFSS://box@account/runs"),
    ],
)
def test_a_uri_no_filesystem_serves_is_refused_naming_the_key(key: str, value: str) -> None:
    scheme = value.split(":")[0].lower()
    with pytest.raises(SettingsError, match=rf"{key}: {scheme}: URIs are not supported"):
        load_settings(None, [f"{key}={value}"], environ={})


@pytest.mark.parametrize("value", ["s3a://b/w", "s3://b/w", "gs://b/w", "hdfs://nn:8020/w"])
def test_uris_with_a_filesystem_load(value: str) -> None:
    assert load_settings(None, [f"catalog.warehouse={value}"], environ={}).warehouse_dir == value


def test_precedence_defaults_file_environment_set(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "c.yaml",
        "home: /from/file\ndata_dir: /data/file\nspark:\n  shuffle_partitions: 3\n",
    )
    from_file = load_settings(conf, environ={})
    assert (from_file.home, from_file.data_dir) == ("/from/file", "/data/file")
    assert from_file.spark.shuffle_partitions == 3
    assert from_file.spark.app_name == "femo"  # untouched default

    env = {"FEMO_HOME": "/from/env", "FEMO_DATA_DIR": "/data/env"}
    from_env = load_settings(conf, environ=env)
    assert (from_env.home, from_env.data_dir) == ("/from/env", "/data/env")

    from_set = load_settings(conf, ["home=/from/set", "spark.shuffle_partitions=5"], environ=env)
    assert from_set.home == "/from/set"
    assert from_set.data_dir == "/data/env"
    assert from_set.spark.shuffle_partitions == 5


def test_unknown_key_is_named(tmp_path: Path) -> None:
    conf = write(tmp_path / "c.yaml", "spark:\n  shuffle_partition: 4\n")
    with pytest.raises(SettingsError, match=r"spark\.shuffle_partition: unknown setting"):
        load_settings(conf, environ={})


def test_unknown_key_from_set_is_named() -> None:
    with pytest.raises(SettingsError, match=r"catalog\.databse: unknown setting"):
        load_settings(None, ["catalog.databse=x"], environ={})


def test_wrong_type_is_named() -> None:
    with pytest.raises(SettingsError, match=r"spark\.shuffle_partitions: .*integer.*'many'"):
        load_settings(None, ["spark.shuffle_partitions=many"], environ={})


def test_out_of_range_and_pattern_errors_are_named() -> None:
    with pytest.raises(SettingsError, match=r"spark\.arrow_max_records_per_batch"):
        load_settings(None, ["spark.arrow_max_records_per_batch=0"], environ={})
    with pytest.raises(SettingsError, match=r"catalog\.database"):
        load_settings(None, ["catalog.database=drop table"], environ={})


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(None, ["spark.shuffle_partitions=x", "nope=1"], environ={})
    assert "spark.shuffle_partitions" in str(info.value)
    assert "nope: unknown setting" in str(info.value)


def test_set_parses_yaml_scalars() -> None:
    assert parse_override("a.b=4") == ("a.b", 4)
    assert parse_override("a.b='4'") == ("a.b", "4")
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=") == ("a.b", None)
    assert parse_override("spark.master=local[2]") == ("spark.master", "local[2]")


@pytest.mark.parametrize("pair", ["novalue", "=3", ""])
def test_malformed_set_is_a_clear_error(pair: str) -> None:
    with pytest.raises(SettingsError, match="--set expects key=value"):
        parse_override(pair)


def test_spark_conf_keys_keep_their_dots() -> None:
    s = load_settings(
        None,
        ["spark.conf.spark.ui.enabled=false", "spark.conf.spark.executor.cores=2"],
        environ={},
    )
    assert s.spark.conf == {"spark.ui.enabled": "false", "spark.executor.cores": "2"}


def test_a_value_is_not_a_section() -> None:
    with pytest.raises(SettingsError, match="home.sub: 'home' is a value, not a section"):
        load_settings(None, ["home=/x", "home.sub=1"], environ={})


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.yaml", environ={})
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(write(tmp_path / "bad.yaml", "home: [unclosed\n"), environ={})
    with pytest.raises(SettingsError, match="mapping of settings"):
        load_settings(write(tmp_path / "list.yaml", "- a\n- b\n"), environ={})


def test_local_yaml_documents_every_setting() -> None:
    documented = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    flat_doc: set[str] = set()

    def walk(prefix: str, node: object) -> None:  # maps and groups are documented whole
        if isinstance(node, dict) and prefix not in (*MAP_SECTIONS, *GROUP_SECTIONS):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat_doc.add(prefix)

    walk("", documented)
    assert "training.augment.flip" in flat_doc
    assert set(flatten(load_settings(None, environ={}))) == flat_doc


@pytest.mark.parametrize("name", ["local.yaml", "cluster.yaml"])
def test_shipped_settings_files_are_valid(name: str) -> None:
    s = load_settings(ROOT / "conf" / name, environ={})
    assert s.catalog.database == "femo"


def test_cluster_template_points_at_shared_services() -> None:
    s = load_settings(ROOT / "conf" / "cluster.yaml", environ={})
    assert s.catalog.metastore_uri is not None
    assert s.catalog.metastore_uri.startswith("thrift://")
    assert s.warehouse_dir.startswith("s3a://")
