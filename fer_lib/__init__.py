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

__version__ = "0.1.0"
