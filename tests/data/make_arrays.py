#!/usr/bin/python3
"""Writes the small numpy-made .npy files that tests/storage/array_file_test.cc reads.

Run from anywhere: /usr/bin/python3 tests/data/make_arrays.py. The outputs are checked in, so the
C++ tests need no Python; the values here are repeated in the test, keep them in sync.

real_trace_sample.npy is not made here: it is the first 20000 row ids of the cache benchmark's
real trace, written by `SAMPLE=tests/data/real_trace_sample.npy
bench/real_trace/make_real_trace.sh` (see bench/README.md).
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, arr, version=None):
    path = os.path.join(HERE, name)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


def main():
    f32 = (np.arange(12, dtype=np.float32) * 0.5 - 1.0).reshape(3, 4)  # -1.0, -0.5, ... 4.5
    save("f32_3x4.npy", f32)
    save("f32_3x4_v2.npy", f32, version=(2, 0))
    save("f32_3x4_v3.npy", f32, version=(3, 0))
    save("f16_2x8.npy", (np.arange(16) / 4.0 - 2.0).astype(np.float16).reshape(2, 8))
    save("f64_2x3.npy", np.array([[1.5, -2.25, 3.0], [0.0, 0.125, -7.0]], dtype=np.float64))
    save("i64_ids.npy", np.array([0, 5, 7, 1 << 40, (1 << 62) + 3], dtype=np.int64))
    save("u64_ids.npy", np.array([3, (1 << 64) - 1], dtype=np.uint64))
    save("i32_ids.npy", np.array([9, 8, 7], dtype=np.int32))
    save("i64_negative_ids.npy", np.array([4, 2, -3, 1], dtype=np.int64))
    save("f32_scalar.npy", np.float32(3.25))
    save("u8_2x5.npy", np.arange(10, dtype=np.uint8).reshape(2, 5))
    save("f32_fortran_2x3.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    save("f32_bigendian_4.npy", np.arange(4, dtype=">f4"))


if __name__ == "__main__":
    main()
