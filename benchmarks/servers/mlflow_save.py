"""Run in the MLflow virtualenv: turn the pickled model into an MLflow model directory.

Usage: python mlflow_save.py MODEL.pkl OUT_DIR
``pyfunc_predict_fn="predict_proba"`` makes /invocations compute the same probabilities as the
other systems.
"""

import pickle
import sys

import mlflow.sklearn

with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
mlflow.sklearn.save_model(model, sys.argv[2], pyfunc_predict_fn="predict_proba",
                          serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE)
