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
#: The paper's Table I gives per-class counts too, but they did not survive the
#: text extraction we work from; only these totals are in its prose.
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

#: Model B's dropout rates, which the paper does not give: our reading, kept beside its numbers
#: so that the models and the training configs (which must not import Keras) share it.
#: Srivastava et al. (2014) found 0.5 best for fully connected hidden units and lower rates
#: for convolutional layers, whose weights are shared and already regularised; the paper
#: itself calls 0.5 "the standard parameter". We use 0.25 after each pooling block and 0.5
#: after each hidden dense block, the rates of Keras' own CIFAR-10 example and of most
#: published FER-2013 baselines.
CONV_DROPOUT = 0.25
DENSE_DROPOUT = 0.5

# --- Tables II and III: the architectures ------------------------------------
#: Which of the paper's tables lists each model.
ARCHITECTURE_TABLE = {"A": "Table II", "B": "Table III"}
#: Every row of Tables II and III: (layer, output shape, parameters). The shape is None
#: where the paper prints none (Table III's first pooling layer); Table III's second
#: convolution, printed "Conv2d_1" again, is ``conv2d_2`` (see ``ERRATA``).
ARCHITECTURE: dict[str, tuple[tuple[str, tuple[int, ...] | None, int], ...]] = {
    "A": (
        ("conv2d_1", (48, 48, 32), 320),
        ("activation_1", (48, 48, 32), 0),
        ("max_pooling2d_1", (24, 24, 32), 0),
        ("conv2d_2", (24, 24, 64), 18_496),
        ("activation_2", (24, 24, 64), 0),
        ("max_pooling2d_2", (12, 12, 64), 0),
        ("conv2d_3", (12, 12, 128), 204_928),
        ("activation_3", (12, 12, 128), 0),
        ("max_pooling2d_3", (6, 6, 128), 0),
        ("conv2d_4", (6, 6, 256), 819_456),
        ("activation_4", (6, 6, 256), 0),
        ("max_pooling2d_4", (3, 3, 256), 0),
        ("flatten_1", (2304,), 0),
        ("dense_1", (64,), 147_520),
        ("activation_5", (64,), 0),
        ("dense_2", (64,), 4_160),
        ("activation_6", (64,), 0),
        ("dense_3", (5,), 325),
        ("activation_7", (5,), 0),
    ),
    "B": (
        ("conv2d_1", (48, 48, 32), 320),
        ("batch_normalization_1", (48, 48, 32), 128),
        ("activation_1", (48, 48, 32), 0),
        ("max_pooling2d_1", None, 0),
        ("dropout_1", (24, 24, 32), 0),
        ("conv2d_2", (24, 24, 64), 18_496),
        ("batch_normalization_2", (24, 24, 64), 256),
        ("activation_2", (24, 24, 64), 0),
        ("max_pooling2d_2", (12, 12, 64), 0),
        ("dropout_2", (12, 12, 64), 0),
        ("conv2d_3", (12, 12, 128), 204_928),
        ("batch_normalization_3", (12, 12, 128), 512),
        ("activation_3", (12, 12, 128), 0),
        ("max_pooling2d_3", (6, 6, 128), 0),
        ("dropout_3", (6, 6, 128), 0),
        ("conv2d_4", (6, 6, 256), 819_456),
        ("batch_normalization_4", (6, 6, 256), 1_024),
        ("activation_4", (6, 6, 256), 0),
        ("max_pooling2d_4", (3, 3, 256), 0),
        ("dropout_4", (3, 3, 256), 0),
        ("flatten_1", (2304,), 0),
        ("dense_1", (64,), 147_520),
        ("batch_normalization_5", (64,), 256),
        ("activation_5", (64,), 0),
        ("dropout_5", (64,), 0),
        ("dense_2", (64,), 4_160),
        ("batch_normalization_6", (64,), 256),
        ("activation_6", (64,), 0),
        ("dropout_6", (64,), 0),
        ("dense_3", (5,), 325),
        ("activation_7", (5,), 0),
    ),
}
TOTAL_PARAMS = {"A": 1_195_205, "B": 1_197_637}
#: Both printed trainable counts are typos: A's must equal its total (nothing is
#: non-trainable), B's total minus non-trainable is 1,196,421.
TRAINABLE_PARAMS_PRINTED = {"A": 1_195_285, "B": 1_196_412}
NON_TRAINABLE_PARAMS = {"A": 0, "B": 1_216}

# --- Table IV: the last ten epochs of the 100-epoch runs (Colab) -------------
#: (seconds per epoch, milliseconds per step, training loss) at epochs 91-100.
TABLE_IV: dict[str, tuple[tuple[int, int, float], ...]] = {
    "A": (
        (17, 88, 0.7416), (17, 88, 0.7474), (16, 86, 0.7432), (16, 87, 0.7526),
        (16, 87, 0.7459), (16, 87, 0.7418), (16, 87, 0.7480), (16, 86, 0.7513),
        (17, 87, 0.7492), (17, 88, 0.7426),
    ),
    "B": (
        (16, 85, 0.9746), (16, 85, 0.9664), (16, 85, 0.9761), (16, 85, 0.9652),
        (16, 85, 0.9656), (16, 84, 0.9707), (16, 84, 0.9678), (16, 85, 0.9647),
        (16, 85, 0.9667), (16, 89, 0.9662),
    ),
}
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
#: Section III.C's train-validation gaps, in points: the sizes of the differences of Table V's MAX rows
#: (highest training against highest validation accuracy; Model B's validation MAX is the higher), not a gap
#: at any one epoch.
TRAIN_VAL_GAP = {"A": 6.7, "B": 0.7}

# --- Table VI: Model B validation accuracy (%) after 50, 100, 200 epochs ------
TABLE_VI: dict[int, float] = {50: 45.23, 100: 62.00, 200: 63.30}
#: Below Table VI: "The iteration with the best accuracy is 63.3% in iteration 200."
TABLE_VI_BEST_EPOCH = 200

# --- Section III.B: the losses after Table IV ----------------------------------
#: "Generally, the validation data error value is lower than the training data".
VALIDATION_LOSS_BELOW_TRAINING = True

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
#: What the 78% is, by the paper's own text (Section III.E): not one light but the average over all three.
LIVE_AVERAGE = "average over the three lights"

#: Abstract, Section III.C and conclusion: Model A overfits, Model B does not
#: ("no overfitting", a gap of 0.7 points).
MODEL_B_OVERFITS = False

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
    "Table III prints Conv2d_1 twice: its second convolution (24x24x64, "
    "18,496 parameters) is conv2d_2.",
    "The text points to the wrong figures: Section II.D describes the "
    "architectures as 'figures 2 and 3' and then as 'Figures 3 and 4'; "
    "Section III.A discusses Figs. 4 and 5 as the models' structures; "
    "Section III.B announces Figure 6 and then Figure 7 for the graph that "
    "is captioned Fig. 4.",
    "Section III.B compares the models 'with 50 and 100 iteration stages', "
    "but Table VI reports 50, 100 and 200.",
    "Table V gives Model A 66.4% training accuracy at stage 0, its first "
    "epoch, while Model B starts at 24.9%: a network from random weights "
    "rarely fits that well in one epoch, so Model A may not have started "
    "from random weights, or its stage 0 is not its first epoch.",
)
