"""fer_lib: a reproduction of Norhikmah, Lutfhi and Rumini (2022), batch
normalization and dropout in a CNN for five-class facial expressions on FER-2013.

Modules, one concern each: ``paper`` (the paper's numbers), ``fer2013`` (the data
set in memory), ``data`` (finding and loading it), ``models`` (Models A and B),
``train`` (the resumable runner), ``evaluate``
(scores and the train-validation gap), ``peers`` and ``peertable`` (published
FER-2013 models, scored beside ours), ``export`` (models as ONNX or LiteRT),
``card`` (the shipped model's card), ``live`` (the real-time application: motion
gate, face detector, labels, commands, the notebook widget), ``plots`` and
``report`` (what the book shows), ``cli`` (the ``fer-lib`` command).
"""

import os

# TensorFlow turns its oneDNN kernels on by default only on processors with AVX-512 VNNI, AVX-512 BF16
# or AMX. Elsewhere (AVX2, such as the AMD EPYC this project trains on) they make a float32 training
# step 1.5-2 times as fast and a batch of faces about as fast or faster, at the cost of a slower single-face call
# in TensorFlow (benchmarks/onednn_speed.py; the live pipeline runs on onnxruntime). So fer_lib asks
# for them before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps TensorFlow's
# default kernels. Manifests record which kernels a run used (provenance.environment).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
