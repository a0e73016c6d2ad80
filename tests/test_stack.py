"""The pinned stack is what the pipeline needs: checks that fail if an install drifts."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pyarrow as pa
import pytest

from femo.platform.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_delta_jars_match_the_python_package() -> None:
    jars_dir = load_settings(ROOT / "conf" / "local.yaml", environ={}).spark.jars_dir
    assert jars_dir is not None
    names = sorted(p.name for p in Path(jars_dir).glob("*.jar"))
    delta = version("delta-spark")
    assert names == [f"delta-spark_2.12-{delta}.jar", f"delta-storage-{delta}.jar"]


def test_versions_are_the_known_good_combination() -> None:
    assert version("pyspark").startswith("3.5.")
    assert version("delta-spark").startswith("3.3.")
    assert version("tensorflow") == "2.15.1"
    assert version("horovod") == "0.28.1"
    assert version("petastorm") == "0.13.1"
    assert version("pyarrow") == "10.0.1"
    assert int(version("numpy").split(".")[0]) < 2
    assert int(version("opencv-python-headless").split(".")[0]) == 4


def test_opencv_ships_the_haar_cascades() -> None:
    import cv2

    cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    assert not cv2.CascadeClassifier(str(cascade)).empty()


def test_horovod_was_built_with_tensorflow_and_gloo() -> None:
    import horovod.tensorflow as hvd

    assert hvd.gloo_built()
    assert not hvd.mpi_built()


class PickledType(pa.PyExtensionType):
    """An extension type that pyarrow rebuilds by unpickling: the CVE-2023-47248 vector."""

    def __init__(self) -> None:
        super().__init__(pa.int64())

    def __reduce__(self):
        return PickledType, ()


def test_pyarrow_cve_hotfix_refuses_pickled_extension_types() -> None:
    import femo  # noqa: F401  - importing femo installs the hotfix

    table = pa.table({"x": pa.ExtensionArray.from_storage(PickledType(), pa.array([1, 2]))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(
        RuntimeError, match="Disallowed deserialization of 'arrow.py_extension_type'"
    ):
        pa.ipc.open_stream(sink.getvalue()).read_all()
