#!/usr/bin/env python3
"""Generate the small ONNX fixtures that smidl-fhe's import tests read.

Writes into fhe/fixtures/:
  lr_sklearn.onnx      StandardScaler + LogisticRegression, converted by skl2onnx
                       (Scaler + LinearClassifier + post-processing nodes)
  mlp_sklearn.onnx     StandardScaler + MLPClassifier(30 ReLU), converted by skl2onnx
                       (Scaler + MatMul/Add/Relu + MatMul/Add/Sigmoid + post-processing)
  mlp_torch.onnx       a 30-30-2 ReLU network laid out the way torch.onnx.export writes
                       nn.Linear (Gemm with transB=1, weight [out, in]) and a final Softmax;
                       built with onnx.helper so the fixture does not need torch installed
  expected.json        onnxruntime's outputs on the test split, and the raw weights, so the
                       Rust tests compare against an independent implementation

The data set is fhe/data/breast_cancer_wdbc.csv (fixed train/test split). Deterministic:
every model uses a fixed random_state.

Usage: pip install numpy scikit-learn skl2onnx onnx onnxruntime
       python3 scripts/gen_onnx_fixtures.py
"""
import csv
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "fhe", "data", "breast_cancer_wdbc.csv")
OUT = os.path.join(ROOT, "fhe", "fixtures")
# Same L2 strength as the Rust trainer's default (objective: mean log-loss + lambda/2 |w|^2).
LR_LAMBDA = 0.01


def load():
    with open(DATA, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    nfeat = header.index("malignant")
    x = {"train": [], "test": []}
    y = {"train": [], "test": []}
    for r in rows:
        x[r[-1]].append([float(v) for v in r[:nfeat]])
        y[r[-1]].append(int(r[nfeat]))
    return (np.array(x["train"]), np.array(y["train"]), np.array(x["test"]), np.array(y["test"]))


def run(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: x.astype(np.float32)})
    return outs


def probs_from(outs):
    # skl2onnx with zipmap=False returns [label, probabilities]; our torch graph returns [probs].
    return np.asarray(outs[-1], dtype=np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    xtr, ytr, xte, yte = load()
    expected = {}

    # Logistic regression: sklearn's C multiplies the summed loss, so C = 1 / (lambda * n).
    lr = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1.0 / (LR_LAMBDA * len(xtr)), tol=1e-10, max_iter=10000),
    )
    lr.fit(xtr, ytr)
    onx = to_onnx(lr, xtr[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    p = os.path.join(OUT, "lr_sklearn.onnx")
    onnx.save(onx, p)
    pr = probs_from(run(p, xte))
    expected["lr_sklearn"] = {
        "test_prob_malignant": pr[:, 1].tolist(),
        "coef": lr[-1].coef_[0].tolist(),
        "intercept": float(lr[-1].intercept_[0]),
        "mean": lr[0].mean_.tolist(),
        "std": lr[0].scale_.tolist(),
        "lambda": LR_LAMBDA,
        "sklearn_test_accuracy": float((lr.predict(xte) == yte).mean()),
    }

    mlp = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(30,), activation="relu", alpha=1e-3,
                      max_iter=2000, random_state=7),
    )
    mlp.fit(xtr, ytr)
    onx = to_onnx(mlp, xtr[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    p = os.path.join(OUT, "mlp_sklearn.onnx")
    onnx.save(onx, p)
    pr = probs_from(run(p, xte))
    m = mlp[-1]
    expected["mlp_sklearn"] = {
        "test_prob_malignant": pr[:, 1].tolist(),
        "w1": m.coefs_[0].T.tolist(), "b1": m.intercepts_[0].tolist(),
        "w2": m.coefs_[1].T.tolist(), "b2": m.intercepts_[1].tolist(),
        "mean": mlp[0].mean_.tolist(), "std": mlp[0].scale_.tolist(),
        "sklearn_test_accuracy": float((mlp.predict(xte) == yte).mean()),
    }

    # torch.onnx.export layout of nn.Sequential(Linear(30,30), ReLU(), Linear(30,2)) followed by
    # Softmax: inputs are already standardised, weights stored [out, in] with Gemm transB=1.
    rng = np.random.default_rng(11)
    w1 = m.coefs_[0].T.astype(np.float32)          # reuse trained hidden layer: [30, 30]
    b1 = m.intercepts_[0].astype(np.float32)
    v = m.coefs_[1].T.astype(np.float32)[0]         # [30]
    c = np.float32(m.intercepts_[1][0])
    # Two logits whose difference is the sklearn logit, plus a common random shift (softmax is
    # shift invariant, so the probabilities must match the sklearn MLP).
    shift = rng.normal(size=30).astype(np.float32) * 0.1
    w2 = np.stack([-v / 2 + shift, v / 2 + shift]).astype(np.float32)
    b2 = np.array([-c / 2 + 0.3, c / 2 + 0.3], dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"],
                         name="/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Relu", ["/fc1/Gemm_output_0"], ["/act/Relu_output_0"], name="/act/Relu"),
        helper.make_node("Gemm", ["/act/Relu_output_0", "fc2.weight", "fc2.bias"], ["logits"],
                         name="/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="/Softmax", axis=1),
    ]
    inits = [
        numpy_helper.from_array(w1, "fc1.weight"), numpy_helper.from_array(b1, "fc1.bias"),
        numpy_helper.from_array(w2, "fc2.weight"), numpy_helper.from_array(b2, "fc2.bias"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 30])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch_size", 2])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="pytorch", producer_version="2.5.0",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    p = os.path.join(OUT, "mlp_torch.onnx")
    onnx.save(model, p)
    xte_std = (xte - mlp[0].mean_) / mlp[0].scale_
    pr = probs_from(run(p, xte_std))
    expected["mlp_torch"] = {
        "test_prob_malignant": pr[:, 1].tolist(),
        "mean": mlp[0].mean_.tolist(), "std": mlp[0].scale_.tolist(),
    }

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    for k, v in expected.items():
        print(k, "sklearn acc", v.get("sklearn_test_accuracy"))


if __name__ == "__main__":
    main()
