"""Models A and B against Tables II and III, and our fused batch normalization against Keras'."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from fer_lib import models, paper


@pytest.fixture(scope="module")
def model_a():
    return models.model_a()


@pytest.fixture(scope="module")
def model_b():
    return models.model_b()


def test_parameter_counts_equal_the_papers(model_a, model_b):
    for name, model in (("A", model_a), ("B", model_b)):
        total, non_trainable = paper.TOTAL_PARAMS[name], paper.NON_TRAINABLE_PARAMS[name]
        assert models.count_params(model) == {
            "total": total, "trainable": total - non_trainable, "non_trainable": non_trainable}


@pytest.mark.parametrize(("builder", "name"), [("model_a", "A"), ("model_b", "B")])
def test_every_layer_matches_the_table(builder, name, request):
    model = request.getfixturevalue(builder)
    for layer_name, shape, params in paper.ARCHITECTURE[name]:
        layer = model.get_layer(layer_name)
        if shape is not None:  # Table III prints no shape for its first pooling layer
            assert tuple(layer.output.shape[1:]) == shape, layer_name
        assert layer.count_params() == params, layer_name


def test_model_b_layer_order(model_b):
    kinds = [type(layer).__name__ for layer in model_b.layers[2:7]]
    assert kinds == ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout"]
    dense_block = [type(layer).__name__ for layer in model_b.layers if "_5" in layer.name]
    assert dense_block == ["BatchNormalization", "Activation", "Dropout"]
    rates = {layer.name: layer.rate for layer in model_b.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates["dropout_1"] == paper.CONV_DROPOUT and rates["dropout_6"] == paper.DENSE_DROPOUT


def test_architecture_tables_beside_the_papers(model_a, model_b):
    built = {"A": model_a, "B": model_b}
    for name, model in built.items():
        table = models.architecture_beside_paper(model, name)
        assert table["agrees"].eq(False).sum() == 0
        assert table["agrees"].eq(True).sum() == len(paper.ARCHITECTURE[name])
        assert list(table.index[~table["in paper"]]) == ["rescale"]
        assert list(table.index) == list(models.architecture_table(model)["layer"])  # the model's order
    table_iii = models.architecture_beside_paper(built["B"], "B")
    assert list(table_iii.index[table_iii["in paper"] & ~table_iii["shape printed"]]) == ["max_pooling2d_1"]
    counts = models.param_counts_beside_paper(built)
    assert counts.loc["Model B", "trainable (paper, total minus non-trainable)"] == 1_196_421
    assert counts.loc["Model A", "trainable (ours)"] == paper.TOTAL_PARAMS["A"]
    assert models.params_at_input_size(built["A"], 64)["dense_1"] == 4 * 4 * 256 * 64 + 64


def test_models_take_raw_pixels(model_a):
    assert model_a.input.shape[1:] == (48, 48, 1)
    rescale = model_a.get_layer("rescale")
    assert rescale.scale == pytest.approx(1 / 255)
    probs = model_a.predict(np.full((2, 48, 48, 1), 255.0, np.float32), verbose=0)
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_dropout_rates_are_arguments():
    model = models.model_b(conv_dropout=0.1, dense_dropout=0.3)
    assert model.get_layer("dropout_4").rate == 0.1 and model.get_layer("dropout_5").rate == 0.3
    with pytest.raises(ValueError, match="dropout"):
        models.model_b(conv_dropout=1.0)
    with pytest.raises(ValueError, match="unknown model"):
        models.build_model("d")


def test_model_c_takes_the_same_input_and_grows_its_dropout_with_depth():
    model = models.build_model("c")
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 5)
    rates = [model.get_layer(f"dropout_{stage}").rate for stage in range(1, len(models.MODEL_C_STAGES) + 1)]
    assert rates == sorted(rates) and rates[0] > 0
    n_norms = sum(isinstance(layer, models.BatchNormalization) for layer in model.layers)
    assert n_norms == 2 * len(models.MODEL_C_STAGES) + 1
    probs = model.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="precision"):
        models.model_c(precision="fp16")


# --- The fused batch normalization is stock Keras' mathematics -------------------------
def _pair(channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ours, stock = models.BatchNormalization(), keras.layers.BatchNormalization()
    for layer in (ours, stock):
        layer.build((None, 6, 6, channels))
    weights = [rng.normal(1, 0.2, channels), rng.normal(0, 0.2, channels),
               rng.normal(0, 0.1, channels), rng.uniform(0.5, 2, channels)]
    for layer in (ours, stock):
        layer.set_weights([w.astype(np.float32) for w in weights])
    return ours, stock


def test_fused_batch_norm_forward_backward_and_moving_statistics():
    ours, stock = _pair(16)
    x = tf.constant(np.random.default_rng(1).normal(3, 2, (8, 6, 6, 16)).astype(np.float32))
    assert ours._can_fuse(x, True, None)
    results = []
    for layer in (ours, stock):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))  # any non-trivial function of the output
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y.numpy(), [g.numpy() for g in grads], [w.numpy() for w in layer.non_trainable_weights]))
    (y1, g1, m1), (y2, g2, m2) = results
    np.testing.assert_allclose(y1, y2, rtol=1e-4, atol=1e-4)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    for a, b in zip(m1, m2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_batch_norm_inference_is_keras():
    ours, stock = _pair(8)
    x = np.random.default_rng(2).normal(0, 1, (4, 6, 6, 8)).astype(np.float32)
    assert not ours._can_fuse(x, False, None)
    np.testing.assert_allclose(ours(x, training=False), stock(x, training=False), atol=1e-6)


def test_model_b_train_step_equals_stock_keras():
    """One training step of the whole Model B, ours against stock layers, from the same weights and masks.

    Plain SGD, whose update is linear in the gradient: Adam's first step is
    lr * sign(gradient), and the biases before a batch normalization have a
    gradient that is zero up to rounding, so its sign is noise."""
    x = np.random.default_rng(3).integers(0, 256, (16, 48, 48, 1)).astype(np.float32)
    y = np.arange(16) % 5
    after = []
    for fused in (True, False):
        keras.utils.set_random_seed(7)
        model = models.model_b(fused_batch_norm=fused)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        loss = model.train_on_batch(x, y)
        after.append((loss, model.get_weights()))
    (loss1, w1), (loss2, w2) = after
    assert loss1 == pytest.approx(loss2, rel=1e-4)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_model_with_fused_layer_saves_and_loads(tmp_path, model_b):
    path = tmp_path / "b.keras"
    model_b.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("batch_normalization_1"), models.BatchNormalization)
    x = np.random.default_rng(4).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model_b.predict(x, verbose=0), atol=1e-6)


# --- Our dropout draw (models.Dropout) against Keras' ------------------------------------------
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_byte_dropout_keeps_keras_rate_and_scale(rate, policy):
    """Same keep rate (within 5 binomial standard deviations) and the very same scaled values as Keras'."""
    x = tf.ones((64, 24, 24, 32), keras.DTypePolicy(policy).compute_dtype)
    ours = models.Dropout(rate, seed=1, dtype=policy)(x, training=True).numpy().astype(np.float32)
    stock = keras.layers.Dropout(rate, seed=1, dtype=policy)(x, training=True).numpy().astype(np.float32)
    n, keep = ours.size, 1 - rate
    assert abs((ours != 0).mean() - keep) < 5 * np.sqrt(keep * rate / n)
    np.testing.assert_array_equal(np.unique(ours), np.unique(stock))


def test_byte_dropout_masks_are_independent_and_seeded():
    """Each random word feeds four neighbouring activations: their masks must not be correlated;
    a seed repeats the masks, another seed and the next call draw new ones."""
    x = tf.ones((256, 32, 32, 4))
    first = models.Dropout(0.5, seed=3)
    a, b = (first(x, training=True).numpy() != 0 for _ in range(2))
    again = models.Dropout(0.5, seed=3)(x, training=True).numpy() != 0
    other = models.Dropout(0.5, seed=4)(x, training=True).numpy() != 0
    np.testing.assert_array_equal(a, again)
    for mask in (b, other):
        assert 0.45 < (mask != a).mean() < 0.55
    flat = a.reshape(-1).astype(float)
    for lag in (1, 2, 3, 4):
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 0.01


def test_byte_dropout_gradient_is_its_mask():
    layer = models.Dropout(0.25, seed=5)
    x = tf.ones((8, 6, 6, 16))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), y.numpy())  # d(x * mask * scale)/dx at x = 1


def test_byte_dropout_is_keras_where_a_byte_cannot_decide():
    """Inference, and a rate that is not a multiple of 1/256, fall back to Keras' own dropout."""
    x = tf.constant(np.random.default_rng(6).normal(size=(16, 10)).astype(np.float32))
    np.testing.assert_array_equal(models.Dropout(0.25)(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(models.Dropout(0.1, seed=7)(x, training=True).numpy(),
                                  keras.layers.Dropout(0.1, seed=7)(x, training=True).numpy())


def test_model_b_with_byte_dropout_is_model_b_and_saves(tmp_path):
    model = models.model_b(dropout_draw="bytes")
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == 6 and all(isinstance(layer, models.Dropout) for layer in dropouts)
    assert models.count_params(model) == models.count_params(models.model_b())
    model.save(tmp_path / "b.keras")
    assert isinstance(keras.models.load_model(tmp_path / "b.keras").get_layer("dropout_1"), models.Dropout)
    with pytest.raises(ValueError, match="dropout_draw must be one of"):
        models.model_b(dropout_draw="bits")


# --- OpenCV: the Viola-Jones cascade the live pipeline uses -------------------------------
def test_haar_cascade_loads_and_finds_a_face():
    from skimage import data as skdata

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()
    grey = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48))
    assert len(faces) >= 1
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    assert 150 < x + w / 2 < 260 and 50 < y + h / 2 < 160  # Eileen Collins' face in the 512x512 photograph
