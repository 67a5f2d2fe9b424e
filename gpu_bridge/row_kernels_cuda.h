// Launchers of the CUDA row kernels (row_kernels.cu), for cuda_device.cu and the GPU bench.
// Internal to gpu_bridge/: everything above the device calls Device::GatherAsync/ScatterAsync.
//
// The kernels produce the bytes of their CPU twins (row_kernels.h) for the same inputs,
// bit for bit, NaN payloads included (the CPU's NaN rules are emulated: a NaN operand of the
// int8/fp8 scale multiply propagates quieted, the value's first; invalid products give the
// host's default NaN). The one exception: an fp8 block whose scale byte is 0xff (NaN) holding
// a NaN code may differ in the NaN's sign, as the CPU result depends on its compiler's operand
// order there.
//
// Thread safety: as the CUDA runtime; the launchers keep no state.
#pragma once

#include <cuda_runtime_api.h>

#include "gpu_bridge/device.h"
#include "storage/status.h"

namespace engram::gpu {

// Enqueue one kernel on `stream` (on the current device). REQUIRES: CheckGatherArgs /
// CheckScatterArgs passed (row_kernels.h); n == 0 enqueues nothing. Errors: the launch's.
Status GatherRowsCuda(const GatherArgs& args, cudaStream_t stream);
Status ScatterRowsCuda(const ScatterArgs& args, cudaStream_t stream);

// OK when the kernels have an image the current device can run (NotSupported naming the
// architectures built otherwise).
Status CheckRowKernelsLoadable();

}  // namespace engram::gpu
