"""The paper's live application: a camera frame in, the faces and their expressions out.

One module per concern: ``frames`` (any image array in, red boxes drawn out),
``detect`` (motion gate, Haar cascade, 48x48 crops), ``classify`` (the CNN
through TensorFlow or onnxruntime, with its release), ``pipeline`` (the stages
as one object), ``apps`` (``fer-lib annotate`` and ``fer-lib webcam``),
``widget`` (the webcam in a notebook) and ``experiment`` (the real-time
chapter's framing experiment and synthetic clip). None of them imports
TensorFlow or Keras unless a Keras model is used, so that ``pip install
"fer_lib[live]"`` runs them on the shipped ONNX model.
"""
