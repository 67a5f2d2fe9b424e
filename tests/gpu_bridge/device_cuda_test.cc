// The CUDA device (cuda_device.cu, row_kernels.cu) against the host-emulated one: the same
// inputs through both must give identical bytes (gathers of every dtype x OutType over the
// layouts of AllGatherCases, edge values included; device_n; scatter; raw rows of every size
// and alignment the copy paths distinguish), and the stream/event plumbing must order work.
// Skips, saying why, where no CUDA device is usable (always when built without CUDA); the
// availability checks run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gpu_bridge/device.h"
#include "storage/dtype.h"
#include "tests/gpu_bridge/device_test_util.h"

#if defined(ENGRAM_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace engram::gpu {
namespace {

using testing::AllGatherCases;
using testing::DeviceMemory;
using testing::Download;
using testing::GatherCase;
using testing::MakeRows;
using testing::PoolFor;
using testing::RunGather;
using testing::RunScatter;
using testing::Upload;

TEST(CudaAvailabilityTest, SaysWhyWhenThereIsNoDevice) {
  std::string why;
  const bool available = CudaDeviceAvailable(&why);
  auto device = OpenCudaDevice(0);
  EXPECT_EQ(available, device.ok());
  if (!available) {
    EXPECT_FALSE(why.empty());
    EXPECT_TRUE(device.status().IsNotSupported()) << device.status().ToString();
  } else {
    EXPECT_FALSE((*device)->emulated());
    EXPECT_EQ((*device)->description().rfind("cuda:0 ", 0), 0u) << (*device)->description();
  }
  auto far = OpenDevice("cuda:4096");
  EXPECT_FALSE(far.ok());
  EXPECT_TRUE(far.status().IsInvalidArgument() || far.status().IsNotSupported())
      << far.status().ToString();
}

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cuda = OpenCudaDevice(0);
    if (!cuda.ok()) GTEST_SKIP() << "no CUDA device: " << cuda.status().ToString();
    cuda_ = std::move(cuda).value();
    host_ = NewHostDevice();
  }

  // Runs `c` on both devices; ASSERTs they agree byte for byte.
  void ExpectSameGather(const std::vector<uint8_t>& pool, const GatherCase& c) {
    SCOPED_TRACE(c.Name());
    auto want = RunGather(host_.get(), pool, c);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    auto got = RunGather(cuda_.get(), pool, c);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < want->size(); ++i) {
      ASSERT_EQ((*got)[i], (*want)[i]) << "byte " << i << " (row " << i / c.out_stride << ", byte "
                                       << i % c.out_stride << " of it)";
    }
  }

  std::unique_ptr<Device> cuda_;
  std::unique_ptr<Device> host_;
};

TEST_F(CudaDeviceTest, GatherMatchesTheHostBitForBit) {
  for (const GatherCase& c : AllGatherCases()) ExpectSameGather(PoolFor(c), c);
}

TEST_F(CudaDeviceTest, GatherHonoursDeviceN) {
  GatherCase c;
  c.dtype = DType::kFp8E4M3Ue8m0;
  c.dim = 256;
  c.slot_bytes = c.row_bytes();
  for (size_t i = 0; i < 1000; ++i) c.slots.push_back((i * 37) % 23);
  const std::vector<uint8_t> pool = PoolFor(c);
  for (OutType out : {OutType::kRaw, OutType::kBF16}) {
    c.out_type = out;
    c.out_stride = OutRowBytes(out, c.dim, c.row_bytes());
    for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{999}, uint64_t{1000}, ~uint64_t{0}}) {
      c.device_n = n;
      ExpectSameGather(pool, c);
    }
  }
}

TEST_F(CudaDeviceTest, RawRowsOfEverySizeAndAlignment) {
  // Every body width (16/8/4/1-byte words) and tail length, with pools offset 0..15 bytes.
  std::mt19937_64 rng(3);
  for (uint32_t row_bytes :
       {1u, 3u, 4u, 8u, 12u, 16u, 24u, 33u, 128u, 256u, 264u, 520u, 1024u, 1031u, 4096u}) {
    for (size_t offset : {0, 1, 4, 8, 12}) {
      GatherCase c;
      c.dtype = DType::kF32;
      c.dim = 1;  // ignored by raw gathers
      c.out_type = OutType::kRaw;
      c.pool_offset = offset;
      c.slot_bytes = row_bytes + (offset % 2 ? 8 : 0);
      c.out_stride = row_bytes + offset;
      for (size_t i = 0; i < 200; ++i) c.slots.push_back(rng() % 50);
      std::vector<uint8_t> pool(50 * c.slot_bytes);
      for (auto& b : pool) b = static_cast<uint8_t>(rng());
      c.raw_bytes = row_bytes;
      ExpectSameGather(pool, c);
    }
  }
}

TEST_F(CudaDeviceTest, LargeGatherAcrossManyBlocks) {
  GatherCase c;
  c.dtype = DType::kFp8E4M3Ue8m0;
  c.dim = 256;
  c.slot_bytes = c.row_bytes();
  std::mt19937_64 rng(11);
  for (size_t i = 0; i < 70000; ++i) c.slots.push_back(rng() % 4096);
  const std::vector<uint8_t> pool = MakeRows(c.dtype, c.dim, 4096, c.slot_bytes, 12);
  for (OutType out : {OutType::kRaw, OutType::kF32, OutType::kBF16}) {
    c.out_type = out;
    c.out_stride = OutRowBytes(out, c.dim, c.row_bytes());
    ExpectSameGather(pool, c);
  }
}

TEST_F(CudaDeviceTest, ScatterMatchesTheHost) {
  std::mt19937_64 rng(5);
  for (uint32_t row_bytes : {1u, 7u, 128u, 264u, 1024u}) {
    for (size_t extra : {0, 5, 8}) {
      SCOPED_TRACE("row_bytes " + std::to_string(row_bytes) + " slot +" + std::to_string(extra));
      const size_t slot_bytes = row_bytes + extra;
      constexpr size_t kSlots = 3000;
      std::vector<uint8_t> pool(kSlots * slot_bytes);
      for (auto& b : pool) b = static_cast<uint8_t>(rng());
      std::vector<size_t> slots(kSlots);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), rng);
      slots.resize(2000);
      std::vector<uint8_t> rows(slots.size() * row_bytes);
      for (auto& b : rows) b = static_cast<uint8_t>(rng());
      auto want = RunScatter(host_.get(), pool, slot_bytes, rows, row_bytes, slots);
      ASSERT_TRUE(want.ok()) << want.status().ToString();
      auto got = RunScatter(cuda_.get(), pool, slot_bytes, rows, row_bytes, slots);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(*got == *want);
    }
  }
}

TEST_F(CudaDeviceTest, CopiesMemsetAndEventsAcrossStreams) {
  constexpr size_t kBytes = 64 << 20;
  auto a = DeviceMemory::Allocate(cuda_.get(), kBytes);
  auto b = DeviceMemory::Allocate(cuda_.get(), kBytes);
  auto pinned = cuda_->MallocHost(kBytes);
  ASSERT_TRUE(a.ok() && b.ok() && pinned.ok());
  auto s1 = cuda_->NewStream(), s2 = cuda_->NewStream();
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_NE((*s1)->native_handle(), nullptr);
  for (int i = 0; i < 20; ++i) {
    ENGRAM_ASSERT_OK(cuda_->MemsetAsync(a->get(), i, kBytes, s1->get()));
  }
  auto done = cuda_->Record(s1->get());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ENGRAM_ASSERT_OK(cuda_->WaitEvent(s2->get(), done->get()));
  ENGRAM_ASSERT_OK(
      cuda_->CopyAsync(b->get(), a->get(), kBytes, CopyKind::kDeviceToDevice, s2->get()));
  ENGRAM_ASSERT_OK(cuda_->CopyAsync(*pinned, b->get(), kBytes, CopyKind::kDeviceToHost, s2->get()));
  auto copied = cuda_->Record(s2->get());
  ASSERT_TRUE(copied.ok());
  ENGRAM_ASSERT_OK(cuda_->Synchronize(copied->get()));
  auto q = cuda_->Query(done->get());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(*q);
  const auto* p = static_cast<const uint8_t*>(*pinned);
  for (size_t i = 0; i < kBytes; i += 4099) ASSERT_EQ(p[i], 19) << "byte " << i;
  cuda_->FreeHost(*pinned);

  auto too_big = cuda_->Malloc(size_t{1} << 52);
  EXPECT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), Status::Code::kResourceExhausted)
      << too_big.status().ToString();
  EXPECT_TRUE(cuda_->MemsetAsync(a->get(), 0, 16, nullptr).IsInvalidArgument());
  auto host_stream = host_->NewStream();
  ASSERT_TRUE(host_stream.ok());
  EXPECT_TRUE(cuda_->MemsetAsync(a->get(), 0, 16, host_stream->get()).IsInvalidArgument());
}

#if defined(ENGRAM_HAVE_CUDA)
// device_n's purpose: one captured graph gathers a different number of rows on each replay.
TEST_F(CudaDeviceTest, CapturedGatherFollowsDeviceN) {
  auto stream = cuda_->NewStream();
  ASSERT_TRUE(stream.ok());
  auto s = static_cast<cudaStream_t>((*stream)->native_handle());
  constexpr size_t kRows = 64, kRowBytes = 128;
  std::vector<uint8_t> pool(kRows * kRowBytes);
  std::iota(pool.begin(), pool.end(), 0);
  auto d_pool = Upload(cuda_.get(), stream->get(), pool.data(), pool.size());
  std::vector<const void*> rows(kRows);
  ASSERT_TRUE(d_pool.ok());
  for (size_t i = 0; i < kRows; ++i) rows[i] = d_pool->get() + (kRows - 1 - i) * kRowBytes;
  auto d_rows = Upload(cuda_.get(), stream->get(), rows.data(), rows.size() * sizeof(void*));
  auto d_out = DeviceMemory::Allocate(cuda_.get(), pool.size());
  auto d_n = DeviceMemory::Allocate(cuda_.get(), sizeof(uint64_t));
  ASSERT_TRUE(d_rows.ok() && d_out.ok() && d_n.ok());
  GatherArgs args;
  args.rows = reinterpret_cast<const void* const*>(d_rows->get());
  args.n = kRows;
  args.row_bytes = kRowBytes;
  args.out = d_out->get();
  args.out_stride = kRowBytes;
  args.device_n = reinterpret_cast<const uint64_t*>(d_n->get());
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  const Status launched = cuda_->GatherAsync(args, stream->get());
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  ENGRAM_ASSERT_OK(launched);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (uint64_t n : {uint64_t{5}, uint64_t{64}, uint64_t{0}, uint64_t{1000}}) {
    SCOPED_TRACE("n " + std::to_string(n));
    ENGRAM_ASSERT_OK(cuda_->MemsetAsync(d_out->get(), 0xa5, pool.size(), stream->get()));
    ENGRAM_ASSERT_OK(
        cuda_->CopyAsync(d_n->get(), &n, sizeof(n), CopyKind::kHostToDevice, stream->get()));
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
    auto out = Download(cuda_.get(), stream->get(), d_out->get(), pool.size());
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t i = 0; i < kRows; ++i) {
      const uint8_t* row = out->data() + i * kRowBytes;
      if (i < n) {
        ASSERT_EQ(std::memcmp(row, pool.data() + (kRows - 1 - i) * kRowBytes, kRowBytes), 0)
            << "row " << i;
      } else {
        ASSERT_EQ(row[0], 0xa5) << "row " << i << " written past device_n";
      }
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}
#endif

}  // namespace
}  // namespace engram::gpu
