#!/usr/bin/env python3
"""Writes the tiny ONNX models weir's inference tests use (committed beside
this script; run it again to regenerate them):

  linear.onnx     features [N,4] f32 -> score [N,1] = sigmoid(features . W1 + B1)
  linear_v2.onnx  the same graph with other weights (W2, B2): model hot swap
  ids.onnx        ids [N,3] i64 -> total [N,1] i64 = sum(ids * 2) along dim 1,
                  doubled [N,3] f32 = float(ids) * 0.5
  not_onnx.onnx   a text file with an .onnx name (a bad model file)

The weights are printed as JSON so tests can compute expected values
(they are also fixed here and in host/tests/all/inference.rs).

Usage: python tests/models/make_models.py [OUT_DIR]   (needs numpy, onnx)
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W1 = [0.5, -1.0, 0.25, 2.0]
B1 = 0.1
W2 = [-0.75, 0.5, 1.5, -0.5]
B2 = -0.2


def linear(w, b, name):
    wt = numpy_helper.from_array(np.array(w, dtype=np.float32).reshape(4, 1), "W")
    bt = numpy_helper.from_array(np.array([b], dtype=np.float32), "B")
    nodes = [
        helper.make_node("MatMul", ["features", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        initializer=[wt, bt],
    )
    return finish(graph)


def ids():
    two = numpy_helper.from_array(np.array([2], dtype=np.int64), "two")
    half = numpy_helper.from_array(np.array([0.5], dtype=np.float32), "half")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Mul", ["ids", "two"], ["twice"]),
        helper.make_node("ReduceSum", ["twice", "axes"], ["total"], keepdims=1),
        helper.make_node("Cast", ["ids"], ["idsf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["idsf", "half"], ["doubled"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 3])],
        [
            helper.make_tensor_value_info("total", TensorProto.INT64, ["N", 1]),
            helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=[two, half, axes],
    )
    return finish(graph)


def finish(graph):
    # Opset 17 / IR 8: old enough for any ONNX Runtime 1.14+.
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="weir-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    onnx.save(linear(W1, B1, "linear_v1"), os.path.join(out, "linear.onnx"))
    onnx.save(linear(W2, B2, "linear_v2"), os.path.join(out, "linear_v2.onnx"))
    onnx.save(ids(), os.path.join(out, "ids.onnx"))
    with open(os.path.join(out, "not_onnx.onnx"), "w") as f:
        f.write("this is not an ONNX model\n")
    print(json.dumps({"linear": {"w": W1, "b": B1}, "linear_v2": {"w": W2, "b": B2}}))


if __name__ == "__main__":
    main()
