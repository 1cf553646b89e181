"""Every number that Norhikmah, Lutfhi and Rumini (2022) report, in one place.

The notebooks print these beside our own measurements and the tests check our
models against them, so a number from the paper is typed exactly once: here.
Where the paper contradicts itself, both readings are kept and the conflict is
named in ``ERRATA``.

Source: JOIV 6(2-2), 2022; the plain-text extraction in ``shared/paper/``.
"""

from __future__ import annotations

CITATION = (
    "Norhikmah, A. Lutfhi, Rumini (2022). The Effect of Layer Batch "
    "Normalization and Dropout of CNN model Performance on Facial Expression "
    "Classification. JOIV: International Journal on Informatics Visualization "
    "6(2-2). doi:10.30630/joiv.6.2-2.921"
)

#: The five classes in the paper's own words, in the label order we use
#: (alphabetical, which is also the order Keras gives the class folders).
CLASSES: tuple[str, ...] = ("angry", "happy", "normal", "sad", "shock")

# --- Table I and Section II.A: the data -------------------------------------
#: Section II.A: "24256 records for training and 3006 for validation".
#: Table I's per-class counts did not survive the text extraction; only
#: these totals are given in the prose.
TRAIN_RECORDS = 24_256
VALIDATION_RECORDS = 3_006

# --- Section II.B-C: pre-processing and hyper-parameters --------------------
#: Section II.B says images were resized to 64x64, but Tables II and III
#: start from 48x48 inputs (FER-2013's native size). We follow the tables.
STATED_IMAGE_SIZE = 64
MODEL_INPUT_SIZE = 48
HYPERPARAMETERS = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "batch_size": 128,  # "128/500" in Section II.C; 128 matches Table IV's step count
    "epochs": (50, 100, 200),  # printed "50.100 and 20" in Section II.C
    "filters": (32, 64, 128, 256),
    "kernel_sizes": (3, 3, 5, 5),
    "hidden_dense_layers": 2,
    "hidden_units": 64,
    "dropout_rate_mentioned": 0.5,  # "the standard parameter for the dropout screen is 0.5"
}

# --- Tables II and III: the architectures ------------------------------------
#: (layer, output shape, parameters) for every layer with parameters or a new shape.
TABLE_II_MODEL_A: tuple[tuple[str, tuple[int, ...], int], ...] = (
    ("conv2d_1", (48, 48, 32), 320),
    ("max_pooling2d_1", (24, 24, 32), 0),
    ("conv2d_2", (24, 24, 64), 18_496),
    ("max_pooling2d_2", (12, 12, 64), 0),
    ("conv2d_3", (12, 12, 128), 204_928),
    ("max_pooling2d_3", (6, 6, 128), 0),
    ("conv2d_4", (6, 6, 256), 819_456),
    ("max_pooling2d_4", (3, 3, 256), 0),
    ("flatten_1", (2304,), 0),
    ("dense_1", (64,), 147_520),
    ("dense_2", (64,), 4_160),
    ("dense_3", (5,), 325),
)
MODEL_A_TOTAL_PARAMS = 1_195_205
MODEL_A_TRAINABLE_PARAMS_PRINTED = 1_195_285  # typo: must equal the total
MODEL_A_NON_TRAINABLE_PARAMS = 0

TABLE_III_MODEL_B: tuple[tuple[str, tuple[int, ...], int], ...] = (
    ("conv2d_1", (48, 48, 32), 320),
    ("batch_normalization_1", (48, 48, 32), 128),
    ("conv2d_2", (24, 24, 64), 18_496),
    ("batch_normalization_2", (24, 24, 64), 256),
    ("conv2d_3", (12, 12, 128), 204_928),
    ("batch_normalization_3", (12, 12, 128), 512),
    ("conv2d_4", (6, 6, 256), 819_456),
    ("batch_normalization_4", (6, 6, 256), 1_024),
    ("flatten_1", (2304,), 0),
    ("dense_1", (64,), 147_520),
    ("batch_normalization_5", (64,), 256),
    ("dense_2", (64,), 4_160),
    ("batch_normalization_6", (64,), 256),
    ("dense_3", (5,), 325),
)
MODEL_B_TOTAL_PARAMS = 1_197_637
MODEL_B_TRAINABLE_PARAMS_PRINTED = 1_196_412  # typo: total minus non-trainable is 1,196,421
MODEL_B_NON_TRAINABLE_PARAMS = 1_216

# --- Table IV: the last ten epochs of the 100-epoch runs (Colab) -------------
#: (seconds per epoch, milliseconds per step, training loss) per epoch.
TABLE_IV_MODEL_A: tuple[tuple[int, int, float], ...] = (
    (17, 88, 0.7416), (17, 88, 0.7474), (16, 86, 0.7432), (16, 87, 0.7526),
    (16, 87, 0.7459), (16, 87, 0.7418), (16, 87, 0.7480), (16, 86, 0.7513),
    (17, 87, 0.7492), (17, 88, 0.7426),
)
TABLE_IV_MODEL_B: tuple[tuple[int, int, float], ...] = (
    (16, 85, 0.9746), (16, 85, 0.9664), (16, 85, 0.9761), (16, 85, 0.9652),
    (16, 85, 0.9656), (16, 84, 0.9707), (16, 84, 0.9678), (16, 85, 0.9647),
    (16, 85, 0.9667), (16, 89, 0.9662),
)
#: Section III: "AMD-87410 Processor, 12GB Ram, AMD Radeon R5 ... Google Colab".
HARDWARE = "Google Colab (authors' machine: AMD processor, 12 GB RAM, Radeon R5)"

# --- Table V: accuracy (%) at stages 0, 1, 98, 99 and summary rows ------------
#: keys: stage (0-based epoch) or "AVG"/"MAX"/"MIN"; values: (train, validation).
TABLE_V: dict[str, dict[int | str, tuple[float, float]]] = {
    "A": {
        0: (66.4, 61.7), 1: (66.9, 61.2), 98: (69.7, 61.0), 99: (70.1, 62.2),
        "AVG": (68.58, 61.77), "MAX": (70.3, 63.6), "MIN": (66.4, 58.8),
    },
    "B": {
        0: (24.9, 29.2), 1: (27.0, 29.8), 98: (61.1, 61.7), 99: (61.1, 60.3),
        "AVG": (52.29, 53.84), "MAX": (61.3, 62.0), "MIN": (24.9, 28.8),
    },
}
#: Section III.C: the train-validation gap at the end of training, in points.
TRAIN_VAL_GAP = {"A": 6.7, "B": 0.7}

# --- Table VI: Model B validation accuracy (%) after 50, 100, 200 epochs ------
TABLE_VI: dict[int, float] = {50: 45.23, 100: 62.00, 200: 63.30}

# --- Abstract and conclusion -------------------------------------------------
FINAL_TRAIN_ACCURACY = 64.8
FINAL_VALIDATION_ACCURACY = 63.3

# --- Figs. 7-8: the live webcam tests (only what the text states) -------------
LIVE_TESTS = {
    "camera": "Arcus Full HD 1080P AWC-07, 2560x1440 (printed 2560x144)",
    "distances_cm": (30, 60),
    "light_sources": ("sun", "room light (11 W lamp)", "camera light"),
    "best_condition_accuracy": 78.0,  # 30 cm, all three lights, average
    "per_class_at_30cm": {"happy": 93.7, "angry": 81.5},
}

#: Places where the paper contradicts itself or its own tables.
ERRATA: tuple[str, ...] = (
    "Table II prints 1,195,285 trainable parameters for Model A; with no "
    "non-trainable parameters it must equal the total, 1,195,205.",
    "Table III prints 1,196,412 trainable parameters for Model B; the total "
    "minus the 1,216 non-trainable ones is 1,196,421.",
    "Section II.A reports 24,256 training records; the five-class Training "
    "split of FER-2013 has 24,176 images (80 fewer).",
    "Section II.B resizes to 64x64, but both models take 48x48 inputs.",
    "The captions of Figs. 2 and 3 swap the models: Fig. 2 is titled Model A "
    "with batch normalization, while the text and Tables II-III give Model A "
    "none.",
    "Section II.C lists the epochs as '50.100 and 20'; Table VI shows 50, "
    "100 and 200.",
)
