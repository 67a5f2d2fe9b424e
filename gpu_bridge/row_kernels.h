// The device's row kernels, CPU twins: the host-emulated device runs these, and the CUDA
// kernels (row_kernels.cu) must produce the same bytes for the same inputs (tests hold them
// together where a GPU exists). Here every pointer is a host pointer.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include "gpu_bridge/device.h"

namespace engram::gpu {

// out + i * out_stride <- convert(rows[i]) for i < n (or *device_n when set, clamped to n).
// Dequantisation is storage/dtype.h's DequantizeRow; bf16 output is its f32 result rounded to
// nearest even (FloatToBFloat16).
void GatherRowsCpu(const GatherArgs& args);
// dst[i] <- src + i * row_bytes for i < n.
void ScatterRowsCpu(const ScatterArgs& args);

// The argument checks both devices make before enqueueing (InvalidArgument naming `op` and the
// problem; OK when n == 0): non-null, 8-byte aligned pointer arrays and device_n, a valid
// dtype/dim with row_bytes >= RowBytes(dtype, dim) for dequantising gathers (dtype and dim are
// ignored for kRaw), out_stride >= OutRowBytes, out and out_stride aligned to the output
// element (4 bytes for kF32, 2 for kBF16), and sizes that do not overflow. Row pointers are
// device data and are not checked here.
Status CheckGatherArgs(const GatherArgs& args, const char* op = "GatherAsync");
Status CheckScatterArgs(const ScatterArgs& args, const char* op = "ScatterAsync");

}  // namespace engram::gpu
