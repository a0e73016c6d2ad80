"""femo.ml.zoo: every network builds for FER crops, carries its rescaling, ends in a float32
softmax (also under mixed bfloat16) and has the size its documentation gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from femo.ml.zoo import ZOO, UnknownModelError, build_model
from femo.platform.errors import FemoError

#: Parameters for (48, 48, 1) and 7 classes, as the module docstring's table gives them.
SIZES = {
    "dense": 1_315_591,
    "cnn_seed": 4_476_743,
    "compact": 1_767_207,
    "compact_wide": 2_514_471,
    "vgg": 9_419_847,
    "mobilenetv2": 2_266_951,
}


@pytest.fixture
def bfloat16() -> Iterator[None]:
    import tensorflow as tf

    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def test_the_zoo_is_the_documented_one() -> None:
    assert set(ZOO) == set(SIZES)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_network_builds_and_predicts_probabilities(name: str) -> None:
    model = build_model(name, (48, 48, 1), 7)
    assert model.count_params() == SIZES[name]
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    probabilities = model(pixels, training=False).numpy()
    assert probabilities.shape == (3, 7)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_pixels_are_rescaled_inside_the_model() -> None:
    model = build_model("dense", (48, 48, 1), 7)
    rescale = model.get_layer("rescale")
    assert float(rescale(np.full((1, 2), 255.0, "float32")).numpy().max()) == pytest.approx(1.0)


@pytest.mark.usefixtures("bfloat16")
def test_mixed_bfloat16_keeps_the_softmax_in_float32() -> None:
    model = build_model("compact", (48, 48, 1), 5)
    assert model.layers[-1].compute_dtype == "float32"
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    assert model(np.zeros((2, 48, 48, 1), "float32")).dtype.name == "float32"


def test_other_shapes_and_class_counts() -> None:
    model = build_model("vgg", (64, 64, 1), 8)
    assert model.output_shape == (None, 8)


def test_bad_requests_are_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'resnet'; the zoo holds: dense,"):
        build_model("resnet", (48, 48, 1), 7)
    with pytest.raises(FemoError, match="at least 2 classes"):
        build_model("dense", (48, 48, 1), 1)
    with pytest.raises(FemoError, match="no weights file at"):
        build_model("mobilenetv2", (48, 48, 1), 7, weights=tmp_path / "missing.h5")
    with pytest.raises(FemoError, match="takes no pretrained weights"):
        build_model("dense", (48, 48, 1), 7, weights=tmp_path / "missing.h5")


def test_mobilenetv2_loads_a_local_weights_file(tmp_path: Path) -> None:
    import tensorflow as tf

    base = tf.keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=None, pooling="avg"
    )
    base.set_weights([np.full(w.shape, 0.01, w.dtype) for w in base.get_weights()])
    path = tmp_path / "mobilenet_v2_no_top.h5"
    base.save_weights(str(path))
    model = build_model("mobilenetv2", (48, 48, 1), 7, weights=path)
    inner = next(layer for layer in model.layers if isinstance(layer, tf.keras.Model))
    assert all(np.allclose(w, 0.01) for w in inner.get_weights())
