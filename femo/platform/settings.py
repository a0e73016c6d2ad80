"""Settings: one typed model, loaded from YAML, the environment and ``--set`` overrides.

Precedence, lowest first: the model's defaults, the YAML file (``--conf``), the environment
(:data:`ENV_OVERRIDES`), then ``--set dotted.key=value`` pairs. Everything is validated when
loaded: an unknown key or a value of the wrong type raises :class:`SettingsError` naming the key.

Relative paths in a YAML file are resolved against the folder of that file, so a settings file
means the same thing from whatever directory a job is started.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from femo.platform.errors import EXIT_USAGE, FemoError

#: Environment variables that override settings, and the dotted key each one sets.
ENV_OVERRIDES: Mapping[str, str] = {
    "FEMO_HOME": "home",
    "FEMO_DATA_DIR": "data_dir",
    "FEMO_JARS_DIR": "spark.jars_dir",
}

#: Sections that are free-form maps: in ``spark.conf.spark.ui.enabled`` everything after
#: ``spark.conf.`` is one key.
MAP_SECTIONS: tuple[str, ...] = ("spark.conf", "faces.policies", "sql_server.hiveconf")

#: Sections of named sub-sections (``fetch.connectors.pixabay.base_url``): dotted keys reach
#: into them as usual, but :func:`flatten` shows each group as one value, so a settings file
#: documents the group as one key and a new member needs no new top-level key.
GROUP_SECTIONS: tuple[str, ...] = ("fetch.connectors",)

#: Keys holding local paths (or URIs) that are resolved relative to the settings file.
PATH_KEYS: tuple[str, ...] = (
    "home",
    "data_dir",
    "spark.jars_dir",
    "catalog.warehouse",
    "mlflow.artifact_root",
    "training.checkpoint_dir",
)

#: URI schemes femo can read and write (a pyarrow filesystem in Python, Hadoop's in Spark),
#: and the scheme pyarrow knows each by. A path setting with any other scheme is refused at
#: load (``abfss://``, ``dbfs:``: no pyarrow filesystem serves them).
URI_SCHEMES: dict[str, str] = {
    "file": "file",
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gs",
    "gcs": "gs",
    "hdfs": "hdfs",
    "viewfs": "viewfs",
}

#: ``scheme:`` at the start of a value (two letters or more: ``C:`` is a drive, not a scheme).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


#: HiveServer2 authentication modes that let anyone in.
UNAUTHENTICATED: tuple[str, ...] = ("NONE", "NOSASL")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``); an empty host,
    a wildcard (``0.0.0.0``, ``::``) or any other name counts as reachable from outside."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SettingsError(FemoError):
    """The settings are invalid; the message names every offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SparkSettings(_Section):
    """How the Spark session is built when a job is not started by ``spark-submit``."""

    master: str = Field("local[*]", description="Spark master; spark-submit's --master wins.")
    app_name: str = "femo"
    jars_dir: str | None = Field(
        None,
        description="Folder of jars (Delta) put on the classpath; null when the cluster has them.",
    )
    shuffle_partitions: int = Field(8, ge=1)
    arrow_max_records_per_batch: int = Field(
        256, ge=1, description="Rows per Arrow batch in pandas UDFs; small for image rows."
    )
    driver_memory: str = "2g"
    local_ip: str | None = Field(
        None,
        description=(
            "Address the driver binds to and advertises (spark.driver.host, "
            "spark.driver.bindAddress, SPARK_LOCAL_IP); null: Spark picks the host's address."
        ),
    )
    show_progress: bool = True
    log_level: str = Field("WARN", pattern="^(ALL|DEBUG|INFO|WARN|ERROR|FATAL|OFF)$")
    python: str | None = Field(
        None, description="Python interpreter for executors (PYSPARK_PYTHON); null: the driver's."
    )
    env_archive: str | None = Field(
        None,
        description="venv-pack archive shipped to executors (--archives ...#environment).",
    )
    conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark properties, passed through verbatim."
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): _spark_value(v) for k, v in value.items()}
        return value


class CatalogSettings(_Section):
    """Where tables live: the Delta warehouse and the metastore that names them."""

    database: str = Field("femo", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    warehouse: str | None = Field(None, description="Warehouse root; null: <home>/warehouse.")
    metastore_uri: str | None = Field(
        None, description="thrift:// URI of a shared Hive metastore; null: embedded Derby."
    )


class LeaseSettings(_Section):
    """One run at a time per writing job and source (``femo.platform.leases``)."""

    expire_seconds: int = Field(
        900,
        ge=30,
        description="A lease not renewed for this long is free: its holder died or hung.",
    )
    heartbeat_seconds: int = Field(
        60, ge=1, description="How often a running job renews its lease."
    )
    when: str = Field(
        "shared_metastore",
        pattern="^(shared_metastore|always)$",
        description="Take leases with a shared metastore only (the embedded one admits one "
        "process at a time already), or always.",
    )

    @model_validator(mode="after")
    def _renewed_in_time(self) -> LeaseSettings:
        if self.heartbeat_seconds * 3 > self.expire_seconds:
            raise ValueError(
                "lease.heartbeat_seconds must be at most a third of lease.expire_seconds, so "
                "that a live holder renews its lease well before it expires"
            )
        return self


class IngestSettings(_Section):
    """Guards and tuning of ``jobs/ingest_images.py``."""

    max_pixels: int = Field(
        40_000_000, ge=1, description="Decompression-bomb guard, checked from the header."
    )
    min_side: int = Field(8, ge=1, description="Smaller images (e.g. 1x1) are quarantined.")
    max_file_bytes: int = Field(
        50_000_000, ge=1, description="Larger files are quarantined without being read."
    )
    max_decoded_bytes: int = Field(
        200_000_000,
        ge=1,
        description="Memory guard, checked from the header: an image whose decoded pixels "
        "(width x height x channels x bytes per channel) would take more is quarantined as "
        "decoded_too_large. Inspecting an image takes about twice its decoded bytes (the "
        "decoder's buffers; three times for a GIF). The default admits every 8-bit image that "
        "max_pixels admits and refuses a 40 MP 16-bit RGBA TIFF (320 MB).",
    )
    grayscale_tolerance: int = Field(
        2, ge=0, le=255, description="Max channel difference for a colour image to count as gray."
    )
    batch_bytes: int = Field(
        16_000_000,
        ge=1,
        description="Image bytes per batch a Python worker inspects and writes (a Parquet row "
        "group): sets the files per batch from the new files' mean size (16 to 4096).",
    )
    tasks_per_core: int = Field(
        6,
        ge=1,
        description="Tasks the new files are spread over, per core: rounds of one task per "
        "core, each taking half of the files left (the last round the rest), so the last tasks "
        "are short and every core is busy to the end.",
    )


class FacesSettings(_Section):
    """``jobs/detect_faces.py``: per-source policy, Haar cascade parameters, crops."""

    default_policy: str = Field("detect", pattern="^(detect|whole_image)$")
    policies: dict[str, str] = Field(
        default_factory=lambda: {"fer2013": "whole_image", "fer2013_csv": "whole_image"},
        description="source_id -> detect | whole_image (already-cropped faces)",
    )
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = Field(1.1, gt=1.0)
    min_neighbors: int = Field(5, ge=0)
    min_size: int = Field(0, ge=0, description="Smallest face side in original pixels; 0: any.")
    max_side: int = Field(640, ge=16, description="Detect on a copy at most this many px a side.")
    min_face_ratio: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Smallest face looked for, as a share of the image's shorter side; detection "
        "runs on a copy where it spans 1.75 cascade windows (0: full "
        "resolution up to max_side).",
    )
    downscaled_min_neighbors: int | None = Field(
        3, ge=0, description="min_neighbors on a downscaled copy; null: min_neighbors."
    )
    crop_size: int = Field(48, ge=8)
    margin: float = Field(0.1, ge=0.0, le=1.0)

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if v not in ("detect", "whole_image")}
        if bad:
            raise ValueError(f"policies must be detect or whole_image, got {bad}")
        return value


class HttpSettings(_Section):
    """How femo talks to web APIs and pages: timeouts, retries, size cap (``femo.sources.http``)."""

    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait between bytes.")
    retries: int = Field(4, ge=0, description="Retries on 429, 5xx, timeouts, lost connections.")
    backoff_factor: float = Field(0.5, ge=0, description="Backoff: factor * 2**(retry-1) s.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest wait between two retries.")
    retry_after_max_s: int = Field(
        120, ge=0, description="Longest Retry-After (or X-RateLimit-Reset) wait honoured."
    )
    total_timeout_s: float = Field(
        300.0, gt=0, description="Seconds a whole response may take, however steady the trickle."
    )
    max_bytes: int = Field(
        20_000_000, ge=1, description="Larger responses are rejected (too_large) unread."
    )
    user_agent: str = "femo (facial emotion recognition pipeline)"
    max_redirects: int = Field(
        5,
        ge=0,
        le=30,
        description="Redirects followed per request, each hop's address checked; more: "
        "http_error.",
    )
    allow_networks: tuple[str, ...] = Field(
        (),
        description="Networks (CIDRs such as 127.0.0.0/8) fetched from although they are not "
        "public: loopback, private, link-local, ... addresses are refused (refused_address) "
        "unless listed here. Empty: public addresses only.",
    )

    @field_validator("allow_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        """Each entry a network in CIDR notation without host bits (``127.0.0.0/8``), written
        the standard way; one network may be given as a plain string."""
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list | tuple):
            return value  # pydantic names the wrong type
        try:
            return tuple(str(ipaddress.ip_network(str(entry).strip())) for entry in entries)
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR notation: {exc}") from None


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ConnectorSettings(_Section):
    """One search connector of ``jobs/fetch_api_images.py`` (``femo.sources.connectors``).

    The API key is never a setting: ``key_env`` names the environment variable that holds it.
    """

    base_url: str = Field(
        description="Scheme, host and optional path prefix of the API; a mirror or a test server."
    )
    key_env: str = Field(pattern=_ENV_NAME, description="NAME of the variable holding the key.")
    host: str | None = Field(None, description="X-RapidAPI-Host header (RapidAPI-hosted APIs).")
    per_page: int | None = Field(
        None, ge=1, le=200, description="Results asked per page; null: the API's own page."
    )


class PixabaySettings(ConnectorSettings):
    """Pixabay's image API (https://pixabay.com/api/docs/)."""

    base_url: str = "https://pixabay.com"
    key_env: str = Field("PIXABAY_API_KEY", pattern=_ENV_NAME)
    per_page: int | None = Field(50, ge=3, le=200, description="Pixabay accepts 3..200.")


class DdgSettings(ConnectorSettings):
    """A DuckDuckGo image search hosted on RapidAPI."""

    base_url: str = "https://duckduckgo-image-search.p.rapidapi.com"
    key_env: str = Field("RAPIDAPI_KEY", pattern=_ENV_NAME)
    host: str | None = "duckduckgo-image-search.p.rapidapi.com"


class FetchConnectors(_Section):
    """Settings of each connector, by its ``--source`` name."""

    pixabay: PixabaySettings = Field(default_factory=PixabaySettings)  # type: ignore[arg-type]
    ddg: DdgSettings = Field(default_factory=DdgSettings)  # type: ignore[arg-type]


class FetchSettings(_Section):
    """``jobs/fetch_api_images.py``: image downloads from image APIs and web image searches."""

    per_emotion: int = Field(20, ge=1, description="Images wanted per emotion (--per-emotion).")
    threads: int = Field(4, ge=1, le=64, description="Parallel downloads (threads on the driver).")
    max_pages: int = Field(10, ge=1, description="Most result pages read per query.")
    connectors: FetchConnectors = Field(default_factory=FetchConnectors)


class SqlServerSettings(_Section):
    """Spark's Thrift server (HiveServer2 protocol) for JDBC/ODBC clients (``make sql-server``).

    HiveServer2's default authentication (``NONE``) asks no password: anyone who reaches the
    port reads every table. So a host other than loopback is refused unless ``authentication``
    names one of HiveServer2's mechanisms that checks who connects (its own keys, such as
    ``hive.server2.authentication.ldap.url``, go into ``hiveconf``), or ``trusted_network``
    says that only trusted clients can reach the address.
    """

    host: str = Field("127.0.0.1", description="Address to bind; 127.0.0.1 keeps it local.")
    port: int = Field(10000, ge=1, le=65535, description="HiveServer2 binary-protocol port.")
    authentication: str = Field(
        "NONE",
        pattern="^(NONE|NOSASL|LDAP|KERBEROS|PAM|CUSTOM)$",
        description="hive.server2.authentication; NONE and NOSASL check nobody.",
    )
    trusted_network: bool = Field(
        False, description="Serve a non-loopback host without authentication (trusted network)."
    )
    hiveconf: dict[str, str] = Field(
        default_factory=dict,
        description="Further HiveServer2 properties (the mechanism's own), passed verbatim.",
    )

    @model_validator(mode="after")
    def _refuse_open_endpoint(self) -> SqlServerSettings:
        if (
            not is_loopback(self.host)
            and self.authentication in UNAUTHENTICATED
            and not self.trusted_network
        ):
            raise ValueError(
                f"sql_server.host {self.host!r} is reachable beyond this machine and "
                f"sql_server.authentication is {self.authentication} (no password): set "
                "sql_server.authentication (LDAP, KERBEROS, PAM or CUSTOM, with its keys in "
                "sql_server.hiveconf), or sql_server.trusted_network: true if only trusted "
                "clients can reach it (docs/sql-server.md)"
            )
        return self


class AugmentSettings(_Section):
    """Random changes to training crops, in ``tf.data`` (never to validation or test)."""

    flip: bool = Field(True, description="Mirror left-right half of the time.")
    shift: float = Field(0.1, ge=0, lt=0.5, description="Largest shift, share of the side.")
    rotation: float = Field(10.0, ge=0, le=180, description="Largest rotation, degrees.")
    zoom: float = Field(0.1, ge=0, lt=1, description="Largest zoom in or out, share of the side.")
    erase: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of crops with a random rectangle (2-25 % of the area) of noise "
        "(random erasing, Zhong et al. 2017); 0: none.",
    )


class TrainingSettings(_Section):
    """How training sets are fed to the models (``femo.ml.feeding``) and how ``jobs/train.py``
    trains them (``femo.ml.training``)."""

    image_size: int = Field(48, ge=8, description="Crop side the models take (faces.crop_size).")
    batch_size: int = Field(128, ge=1, description="Examples per step and rank.")
    shuffle_buffer: int = Field(4096, ge=1, description="Examples shuffled together in tf.data.")
    augment: AugmentSettings = Field(default_factory=AugmentSettings)  # type: ignore[arg-type]
    model: str = Field("compact", description="Zoo network trained when --model is not given.")
    num_proc: int | None = Field(
        None, ge=1, description="Horovod ranks; null: the session's default parallelism."
    )
    threads_per_rank: int | None = Field(
        None, ge=1, description="TensorFlow intra-op threads a rank uses; null: cores / ranks."
    )
    epochs: int = Field(100, ge=1, description="Most epochs a run trains.")
    minutes: float | None = Field(
        None, gt=0, description="Wall-clock budget of the epochs; null: none."
    )
    learning_rate: float = Field(1e-3, gt=0, description="Adam's rate for one rank.")
    warmup_epochs: int = Field(3, ge=0, description="Epochs to ramp the rate up to rate x ranks.")
    patience: int = Field(15, ge=1, description="Epochs without a better val accuracy to stop.")
    precision: str = Field(
        "float32", pattern="^(float32|mixed_bfloat16|mixed_float16)$", description="Keras policy."
    )
    class_weights: bool = Field(False, description="Weight the loss by the set's class weights.")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Share of each target spread evenly over the classes."
    )
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Decay of an average of the weights updated every step; validation, the "
        "best weights and the model are the average's; 0: none.",
    )
    seed: int = Field(0, description="Seeds of weights, shuffling and augmentation.")
    timeout_minutes: float = Field(
        240, gt=0, description="A run still going after this long is stopped and fails."
    )
    stall_seconds: int = Field(
        120, ge=10, description="Horovod stops a run whose ranks wait on each other this long."
    )
    start_timeout_s: int = Field(
        120, ge=10, description="Seconds for every rank to start (free task slots are needed)."
    )
    checkpoint_dir: str | None = Field(
        None,
        description="Run folders, a path rank 0 and the driver share; null: <home>/models/runs.",
    )


class MlflowSettings(_Section):
    """MLflow tracking and model registry (``femo.ml.tracking``)."""

    tracking_uri: str | None = Field(
        None, description="null: SQLite under <home>/mlflow; a cluster names its server."
    )
    artifact_root: str | None = Field(
        None, description="null: <home>/mlflow/artifacts (absolute); used by new experiments."
    )
    experiment: str = Field("femo", description="Experiment of the training runs.")
    model_name: str = Field("femo-emotion", description="Registered model of every run.")


class Settings(_Section):
    """All femo settings. Mirrors ``conf/local.yaml`` key for key."""

    home: str = Field(
        "~/.femo", description="Holds warehouse, metastore, landing, models and reports."
    )
    data_dir: str | None = Field(None, description="Where raw datasets (FER-2013, ...) are found.")
    spark: SparkSettings = Field(default_factory=SparkSettings)  # type: ignore[arg-type]
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)  # type: ignore[arg-type]
    lease: LeaseSettings = Field(default_factory=LeaseSettings)  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]
    faces: FacesSettings = Field(default_factory=FacesSettings)  # type: ignore[arg-type]
    http: HttpSettings = Field(default_factory=HttpSettings)  # type: ignore[arg-type]
    fetch: FetchSettings = Field(default_factory=FetchSettings)  # type: ignore[arg-type]
    sql_server: SqlServerSettings = Field(default_factory=SqlServerSettings)  # type: ignore[arg-type]
    training: TrainingSettings = Field(default_factory=TrainingSettings)  # type: ignore[arg-type]
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _known_schemes(self) -> Settings:
        for key in PATH_KEYS:
            value: Any = self
            for part in key.split("."):
                value = getattr(value, part)
            scheme = uri_scheme(value) if isinstance(value, str) else None
            if scheme is not None and scheme not in URI_SCHEMES:
                raise ValueError(
                    f"{key}: {scheme}: URIs are not supported: no filesystem here serves them "
                    f"(supported: {', '.join(f'{s}:' for s in URI_SCHEMES)})"
                )
        return self

    # Derived locations -------------------------------------------------------------------
    def _under_home(self, name: str) -> str:
        return _join(self.home, name)

    @property
    def warehouse_dir(self) -> str:
        """Root of the Delta warehouse."""
        return self.catalog.warehouse or self._under_home("warehouse")

    @property
    def metastore_dir(self) -> str:
        """Folder of the embedded Derby metastore (unused with ``catalog.metastore_uri``)."""
        return self._under_home("metastore")

    @property
    def landing_dir(self) -> str:
        """Landing zone that download jobs fill."""
        return self._under_home("landing")

    @property
    def models_dir(self) -> str:
        """Trained models and checkpoints."""
        return self._under_home("models")

    @property
    def reports_dir(self) -> str:
        """Generated reports."""
        return self._under_home("reports")

    @property
    def runs_dir(self) -> str:
        """Training runs' folders (checkpoints, best weights, TensorBoard logs, state)."""
        return self.training.checkpoint_dir or _join(self.models_dir, "runs")

    @property
    def mlflow_dir(self) -> str:
        """The local MLflow store (SQLite database and artefacts) when none is configured."""
        return self._under_home("mlflow")

    @property
    def checkpoints_dir(self) -> str:
        """Streaming checkpoints of incremental jobs."""
        return self._under_home("checkpoints")


def _spark_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def uri_scheme(value: str) -> str | None:
    """The scheme of a URI (``s3a``, ``file``), lower case; None for a plain path."""
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def is_uri(value: str) -> bool:
    """True for a URI (``s3a://``, ``file:``, ...), which is never resolved as a local path."""
    return uri_scheme(value) is not None


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else str(Path(base) / name)


def _resolve_path(value: str, base: Path | None) -> str:
    if is_uri(value):
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return str(path.resolve())


def parse_override(pair: str, option: str = "--set") -> tuple[str, Any]:
    """Split ``key=value``; the value is read as a YAML scalar (``4`` is an int, ``'4'`` a str).

    Raises:
        SettingsError: no ``=`` or no key; the message names ``option``.
    """
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SettingsError(f"{option} expects key=value, got {pair!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{key}: cannot read value {raw!r}: {exc}") from exc
    return key, value


def _split_key(key: str) -> list[str]:
    for section in MAP_SECTIONS:
        if key.startswith(section + ".") and len(key) > len(section) + 1:
            return [*section.split("."), key[len(section) + 1 :]]
    return key.split(".")


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = _split_key(key)
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SettingsError(f"{key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _get_dotted(tree: Mapping[str, Any], key: str) -> Any:
    node: Any = tree
    for part in _split_key(key):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _lookup(tree: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """Whether ``key`` is in ``tree``, and its value (which may be None)."""
    node: Any = tree
    for part in _split_key(key):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a mapping of settings at the top level")
    return data


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown setting")
        elif isinstance(err.get("input"), dict):  # a section's own check: its message says it
            lines.append(str(err["msg"]).removeprefix("Value error, "))
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid settings ({source}):\n  " + "\n  ".join(lines)


def load_settings(
    conf_file: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate settings.

    Args:
        conf_file: YAML file; ``None`` uses the built-in defaults only.
        overrides: ``dotted.key=value`` strings (from ``--set``), applied last.
        environ: environment to read :data:`ENV_OVERRIDES` from; defaults to ``os.environ``.

    Raises:
        SettingsError: unreadable file, unknown key or wrong type; the message names the key.
    """
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    base: Path | None = None
    sources = ["defaults"]
    if conf_file is not None:
        path = Path(conf_file).expanduser().resolve()
        tree = copy.deepcopy(_read_yaml(path))
        base = path.parent
        sources.append(str(path))
        for key in PATH_KEYS:
            value = _get_dotted(tree, key)
            if isinstance(value, str):
                _set_dotted(tree, key, _resolve_path(value, base))
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(tree, key, _resolve_path(env[var], None))
            sources.append(f"${var}")
    for pair in overrides:
        key, value = parse_override(pair)
        if key in PATH_KEYS and isinstance(value, str):
            value = _resolve_path(value, None)
        _set_dotted(tree, key, value)
        sources.append(f"--set {key}")
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise SettingsError(_format_errors(exc, ", ".join(sources))) from None
    if not is_uri(settings.home):
        settings = settings.model_copy(update={"home": _resolve_path(settings.home, None)})
    return settings


def flatten(settings: Settings) -> dict[str, Any]:
    """Settings as ``{dotted.key: value}``, for printing and documentation checks."""
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and prefix not in (*MAP_SECTIONS, *GROUP_SECTIONS):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = node

    walk("", settings.model_dump())
    return out


#: Environment variable naming the settings file used when ``--conf`` is not given.
CONF_ENV = "FEMO_CONF"


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose settings: ``--conf FILE`` and repeatable ``--set KEY=VALUE``.

    Read them back with :func:`load_settings` (``args.conf``, ``args.overrides``).
    """
    parser.add_argument(
        "--conf",
        metavar="FILE",
        default=os.environ.get(CONF_ENV) or None,
        help=f"settings YAML (default: ${CONF_ENV}, else built-in defaults)",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override one setting, e.g. --set spark.shuffle_partitions=4 (repeatable)",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m femo.platform.settings [--conf F] [--set k=v] [--get KEY]``: the effective
    settings."""
    parser = argparse.ArgumentParser(
        description="Print the effective settings (after file, environment and --set)."
    )
    add_settings_arguments(parser)
    parser.add_argument("--get", metavar="KEY", help="print only this dotted key's value")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.conf, args.overrides)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    values = flatten(settings)
    derived = {
        "warehouse_dir": settings.warehouse_dir,
        "metastore_dir": settings.metastore_dir,
        "landing_dir": settings.landing_dir,
        "models_dir": settings.models_dir,
        "reports_dir": settings.reports_dir,
    }
    if args.get:
        found, nested = _lookup(settings.model_dump(), args.get)
        if args.get in values:
            value = values[args.get]
        elif args.get in derived:
            value = derived[args.get]
        elif found:  # inside a group section, e.g. fetch.connectors.ddg.host
            value = nested
        else:
            print(f"error: no setting {args.get}", file=sys.stderr)
            return EXIT_USAGE
        print("" if value is None else value)
        return 0
    print(yaml.safe_dump({**values, **derived}, sort_keys=False).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
