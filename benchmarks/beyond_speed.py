"""What Model C (chapter 9) costs live, beside the shipped Model B, measured in one run.

    python benchmarks/beyond_speed.py [--run results/beyond/model_c/seed0] [--frames 300] [--out FILE]

Prints the milliseconds of one face (batch 1) on onnxruntime, the way the live
pipeline runs a model, for Model B and Model C, and Model C mirrored too (two
faces per call) and as an ensemble of three (three calls); then the live
pipeline's frames per second on a moving face with each model. Goals (issue 24):
Model C at most 5 ms per face, and the pipeline still at least 60 frames/s.

A network's cost does not depend on its weights: where Model C has no trained
run yet, a freshly initialised one is timed, and the output says so. The numbers,
the machine and its load go to ``results/beyond/speed.json``, which chapter 9 reads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np
from realtime_speed import median_ms  # this folder's benchmark of the live pipeline
from skimage import data as skdata

from fer_lib import augment, export, goals, models, provenance, runs
from fer_lib.live import classify
from fer_lib.live.experiment import synthetic_clip
from fer_lib.live.pipeline import Pipeline
from fer_lib.paths import MODEL_B, checkout_relative, shipped_file

GOAL_MS_PER_FACE = goals.GOALS["latency"].target
GOAL_FPS = goals.GOALS["fps"].target
ENSEMBLE = 3


def model_c_onnx(run: Path | None, folder: Path) -> tuple[Path, str]:
    """Model C as ONNX, from a complete run's best weights (``runs.Run.best_weights``) or freshly initialised:
    (file, what it is)."""
    weights = runs.load_run(run).best_weights() if run is not None and (run / "manifest.json").is_file() else None
    if weights is not None:
        source, what = weights, checkout_relative(weights)
    else:
        source, what = folder / "model_c.keras", "freshly initialised (no trained run yet; same cost)"
        models.model_c().save(source)
    out = folder / "model_c.onnx"
    export.export(source, out, release="csv")
    return out, what


def fps(pipeline: Pipeline, frames: list[np.ndarray]) -> float:
    pipeline.process(frames[0])  # warm-up
    start = time.perf_counter()
    for frame in frames:
        pipeline.process(frame)
    return len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("results/beyond/model_c/seed0"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("results/beyond/speed.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        c_path, what = model_c_onnx(args.run, Path(tmp))
        b = classify.load_classifier(shipped_file(MODEL_B, ".onnx"))
        c = classify.load_classifier(c_path)
        face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
        pair = np.concatenate([face, augment.mirrored(face)])
        ms = {
            "Model B": median_ms(lambda: b.predict_proba(face), args.repeats),
            "Model C": median_ms(lambda: c.predict_proba(face), args.repeats),
            "Model C, mirrored too": median_ms(lambda: c.predict_proba(pair), args.repeats),
            "Model C and Model B": median_ms(lambda: (c.predict_proba(face), b.predict_proba(face)), args.repeats),
            f"Model C, ensemble of {ENSEMBLE}": median_ms(
                lambda: [c.predict_proba(face) for _ in range(ENSEMBLE)], args.repeats),
        }
        print(f"Model C: {what}; {os.cpu_count()} CPUs; one face per call on onnxruntime, median of {args.repeats}")
        for name, value in ms.items():
            print(f"  {name:<28} {value:6.2f} ms/face  ({value / ms['Model B']:.2f} x Model B)")
        verdict = "met" if ms["Model C"] <= GOAL_MS_PER_FACE else "missed"
        print(f"goal <= {GOAL_MS_PER_FACE} ms per face for Model C: {verdict}")

        astronaut = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)[67:170, 173:276]
        moving, _ = synthetic_clip([astronaut], moving=args.frames, still=0, face_size=160, step=8)
        rates = {"Model B": fps(Pipeline.load(shipped_file(MODEL_B, ".onnx")), moving),
                 "Model C": fps(Pipeline.load(c_path), moving)}
    print(f"\nlive pipeline, 640x480 frames, a face moving in every frame ({args.frames} frames):")
    for name, value in rates.items():
        print(f"  {name:<28} {value:6.1f} frames/s")
    print(f"goal >= {GOAL_FPS} frames/s with Model C: {'met' if rates['Model C'] >= GOAL_FPS else 'missed'} "
          f"({rates['Model C'] / rates['Model B']:.2f} of Model B's rate in the same run)")
    provenance.write_benchmark_record(args.out, {
        "model_c": what, "ms_per_face": ms, "fps": rates, "goals": {"ms_per_face": GOAL_MS_PER_FACE, "fps": GOAL_FPS},
        "repeats": args.repeats, "frames": args.frames}, load_before)
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
