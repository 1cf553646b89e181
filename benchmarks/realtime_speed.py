"""Frames per second of the live pipeline on 640x480 frames with one face, and where the time goes.

    python benchmarks/realtime_speed.py [--frames 300] [--model PATH]

Prints, with the default settings: the whole pipeline's frames per second
(goal: 30, a webcam's rate; 60 with the settings that find 48 px faces) on a
face that moves in every frame (the motion gate never skips) and on a still
scene; the median milliseconds per stage (conversion, motion, detection,
classification, drawing) and each stage's share; the same moving clip with the
settings before the live study (80 px minimum, 5 neighbours, the whole frame
searched), measured in the same run so that the ratio holds on a busy machine;
a moving object that is not a face, where the detector's second, denser search
runs on every frame; then the two
choices behind those numbers, each against the obvious alternative: Haar
detection on the full frame with OpenCV's default minimum size versus ours,
and an eager Keras call versus the compiled one for a single face (with the
largest difference in probabilities), and the shipped model's ONNX copy on
onnxruntime, which the pipeline runs by default. Last, the webcam widget's
kernel half: milliseconds per frame from the bytes the browser sends (grey
pixels or a JPEG, at the widget's frame_width and at the camera's full size)
to the reply. The face is
scikit-image's astronaut.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np
from skimage import data as skdata
from tqdm.auto import tqdm

from fer_lib import models
from fer_lib.live import classify
from fer_lib.live.detect import CASCADE, prepare_faces
from fer_lib.live.experiment import synthetic_clip
from fer_lib.live.pipeline import Pipeline
from fer_lib.live.widget import WebcamWidget
from fer_lib.paths import MODEL_B, shipped_file

STAGES = ("convert", "motion", "detection", "classification", "drawing")
GOAL_FPS = 30
#: The live study's goal: faces 48 px wide found, and still 60 frames/s (issue 15).
GOAL_SMALL_FACES_FPS = 60
#: The settings before the live study, for the comparison.
FORMER = {"min_face_size": 80, "min_neighbors": 5, "search_moving": False, "dense_retry": False}


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: first calls trace graphs and fill caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def run_clip(pipeline: Pipeline, frames: list[np.ndarray], label: str) -> tuple[float, list[dict]]:
    """Frames per second over the clip (after a warm-up frame) and every frame's stage times."""
    pipeline.reset()
    pipeline.annotate(frames[0])
    timings = []
    start = time.perf_counter()
    for frame in tqdm(frames, desc=label, unit="frame", leave=False):
        timings.append(pipeline.annotate(frame)[1].timings)
    return len(frames) / (time.perf_counter() - start), timings


def stage_table(timings: list[dict]) -> None:
    medians = {s: statistics.median(t.get(s, 0.0) for t in timings) for s in STAGES}
    total = sum(medians.values())
    for stage, ms in medians.items():
        print(f"  {stage:<15} {ms:7.2f} ms  {100 * ms / total:5.1f}%")
    print(f"  {'total':<15} {total:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--model", help="a saved Keras or ONNX model (default: the shipped Model B)")
    args = parser.parse_args()

    pipeline = Pipeline.load(args.model)
    face = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)[67:170, 173:276]
    moving, _ = synthetic_clip([face], moving=args.frames, still=0, face_size=160, step=8)
    still, _ = synthetic_clip([face], moving=1, still=args.frames - 1, face_size=160)
    print(f"640x480 frames, one face, default settings (min face {pipeline.detector.min_size} px, "
          f"detection on a copy scaled by {pipeline.detector.scale:.2f}), {os.cpu_count()} CPUs")

    fps, timings = run_clip(pipeline, moving, "moving")
    found = sum(1 for t in timings if "detection" in t)
    print(f"\nmoving face: {fps:.1f} frames/s ({fps / GOAL_FPS:.2f} of the {GOAL_FPS} goal, "
          f"{fps / GOAL_SMALL_FACES_FPS:.2f} of the {GOAL_SMALL_FACES_FPS} goal with 48 px faces); "
          f"detection ran on {found} of {len(timings)} frames")
    stage_table(timings)
    former = Pipeline.load(args.model, **FORMER)
    fps_former, timings_former = run_clip(former, moving, "former")
    print(f"\nmoving face, former settings (min face 80 px, 5 neighbours, whole frame searched): "
          f"{fps_former:.1f} frames/s; the default runs at {fps / fps_former:.2f} of that")
    stage_table(timings_former)
    cup = cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR)[40:340, 150:450]
    faceless, _ = synthetic_clip([cup], moving=args.frames, still=0, face_size=160, step=8)
    fps_faceless, timings_faceless = run_clip(pipeline, faceless, "no face")
    print(f"\nmoving cup of coffee, no face (the second, denser search runs on every frame): {fps_faceless:.1f} "
          f"frames/s; detection ran on {sum(1 for t in timings_faceless if 'detection' in t)} of "
          f"{len(timings_faceless)} frames")
    stage_table(timings_faceless)
    fps_still, timings_still = run_clip(pipeline, still, "still")
    print(f"\nstill scene: {fps_still:.1f} frames/s (the motion gate skipped "
          f"{sum(1 for t in timings_still if 'detection' not in t)} of {len(timings_still)} frames)")
    stage_table(timings_still)

    gray = cv2.cvtColor(moving[0], cv2.COLOR_BGR2GRAY)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, CASCADE))
    full = median_ms(lambda: cascade.detectMultiScale(gray, 1.1, 5), 20)
    full_min = median_ms(lambda: cascade.detectMultiScale(gray, 1.1, 5, minSize=(pipeline.detector.min_size,) * 2), 20)
    ours = median_ms(lambda: pipeline.detector.detect(gray), 20)
    print(f"\ndetection: full frame, OpenCV's default minimum {full:.1f} ms; full frame, minimum "
          f"{pipeline.detector.min_size} px {full_min:.1f} ms; ours (downscaled copy) {ours:.1f} ms "
          f"({full / ours:.1f}x faster than the default)")

    keras_classifier = classify.load_classifier(shipped_file(MODEL_B))
    model = keras_classifier.model
    crops = prepare_faces(gray, pipeline.detector.detect(gray), pipeline.classifier.equalize)[:1]
    x = models.as_model_input(crops)
    eager = median_ms(lambda: model(x, training=False), 50)
    predict = median_ms(lambda: model.predict(x, verbose=0), 20)
    compiled = median_ms(lambda: keras_classifier.predict_proba(crops), 50)
    difference = np.abs(keras_classifier.predict_proba(crops) - model.predict(x, verbose=0)).max()
    print(f"one face, the shipped Keras model: eager call {eager:.1f} ms, model.predict {predict:.1f} ms, compiled "
          f"{compiled:.1f} ms ({eager / compiled:.1f}x faster than eager; largest probability difference from "
          f"predict {difference:.1e})")
    onnx = classify.load_classifier(shipped_file(MODEL_B, ".onnx"))
    onnx_ms = median_ms(lambda: onnx.predict_proba(crops), 50)
    print(f"one face on onnxruntime (the shipped ONNX model, the pipeline's default): {onnx_ms:.1f} ms "
          f"({compiled / onnx_ms:.1f}x faster than the compiled Keras call); largest probability difference from "
          f"predict {np.abs(onnx.predict_proba(crops) - model.predict(x, verbose=0)).max():.1e}")
    widget_kernel(pipeline, moving)


def widget_kernel(pipeline: Pipeline, frames: list[np.ndarray]) -> None:
    """The webcam widget's kernel time per frame, from the bytes the browser sends to the reply: grey pixels or
    a JPEG, at the widget's frame_width and at the camera's size."""
    widget = WebcamWidget(pipeline)
    height, width = frames[0].shape[:2]
    for sent in (widget.frame_width, width):
        size = (sent, round(height * sent / width))
        small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        quality = [cv2.IMWRITE_JPEG_QUALITY, round(100 * widget.jpeg_quality)]
        messages = {
            "grey pixels": [(g.tobytes(), list(g.shape)) for g in (cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in small)],
            "JPEG": [(cv2.imencode(".jpg", f, quality)[1].tobytes(), None) for f in small],
        }
        for name, sent_frames in messages.items():
            pipeline.reset()
            times = []
            for buffer, shape in sent_frames:
                start = time.perf_counter()
                widget.process_frame(buffer, size=(width, height), shape=shape)
                times.append((time.perf_counter() - start) * 1000.0)
            kb = statistics.median(len(b) for b, _ in sent_frames) / 1000
            print(f"widget kernel, {size[0]}x{size[1]} {name} ({kb:.0f} kB) from a {width}x{height} camera: "
                  f"{statistics.median(times):.1f} ms per frame, bytes to reply "
                  f"({1000 / statistics.median(times):.0f} frames/s at most)")


if __name__ == "__main__":
    main()
