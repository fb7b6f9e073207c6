"""`benchmarks/peaks.py`: the throughput table's measured matmul peaks.

Each test runs the current Keras backend's own library (TensorFlow, JAX or
torch), so the suite checks all three."""

import os
import sys

import keras
import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)  # as the benchmark scripts import it
import peaks  # noqa: E402
import throughput  # noqa: E402

LIBRARY = keras.backend.backend()


@pytest.mark.parametrize("bfloat16", [False, True])
def test_timing_stops_after_the_product_is_read_back(bfloat16):
    # The timed calls' last product is read back to the host before the
    # clock stops; the value read must be numpy's product (so the work
    # was done, not merely dispatched, inside the timing).
    a, b = peaks._operands(3, 16, 8, 5)
    expected = (a @ b)[0, 0, 0]
    seconds, value = peaks.time_matmul(LIBRARY, 3, 16, 8, 5,
                                       bfloat16=bfloat16, repeats=2,
                                       warmup=1)
    assert seconds > 0
    tolerance = 0.1 if bfloat16 else 1e-4  # bf16 keeps 8 bits
    assert value == pytest.approx(float(expected), rel=tolerance,
                                  abs=tolerance)


def test_host_value_waits_for_an_asynchronous_result():
    # JAX dispatches asynchronously: after `_host_value` the array must be
    # ready. torch and TensorFlow run CPU ops eagerly; their value must
    # still be the product's.
    run, a, b = peaks._matmul_fn(LIBRARY, *peaks._operands(1, 64, 64, 64),
                                 False)
    product = run(a, b)
    value = peaks._host_value(LIBRARY, product)
    if LIBRARY == "jax":
        assert product.is_ready()
    assert value == pytest.approx(float(np.asarray(product)[0, 0, 0]))


def test_model_matmuls_are_the_forward_flops_of_a_training_step():
    # Three times the forward matmuls' FLOPs is the training step's count
    # the table divides by (forward + backward = 3x forward).
    for config in throughput.CONFIGS.values():
        forward = sum(2 * count * batch * m * k * n for _, count, batch, m,
                      k, n in peaks.model_matmuls(config))
        assert 3 * forward == throughput.train_flops(config) * config[
            "batch"]


def test_matmul_peak_weights_each_shape_by_how_often_it_runs():
    config = dict(image=8, patch=4, width=8, depth=2, heads=2, mlp=16,
                  batch=2)
    result = peaks.matmul_peak(LIBRARY, config, repeats=1)
    shapes = peaks.model_matmuls(config)
    assert sorted(result["shapes"]) == sorted(name for name, *_ in shapes)
    # The mix's rate: all FLOPs (each shape times its count) over all the
    # time (each shape's time per call times its count).
    flops = {name: 2.0 * batch * m * k * n
             for name, _, batch, m, k, n in shapes}
    counts = {name: count for name, count, *_ in shapes}
    total = sum(counts[s] * flops[s] for s in flops)
    seconds = sum(counts[s] * flops[s] / (result["shapes"][s] * 1e9)
                  for s in flops)
    assert result["gflops"] == pytest.approx(total / seconds / 1e9)


def test_an_unknown_library_names_the_choices():
    with pytest.raises(ValueError, match="library='numpy'"):
        peaks._matmul_fn("numpy", *peaks._operands(1, 2, 2, 2), False)
