// The host-emulated device (device.h, host_device.cc) and the CPU twins of the row kernels
// (row_kernels.h): memory and its limit, copies of every kind, memset, stream order, events
// across streams, sticky errors, argument and pointer checks, gathers of every dtype x OutType
// against DequantizeRow computed here, device_n, scatter, and use from several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gpu_bridge/device.h"
#include "gpu_bridge/row_kernels.h"
#include "storage/dtype.h"
#include "tests/gpu_bridge/device_test_util.h"

namespace engram::gpu {
namespace {

using testing::AllGatherCases;
using testing::DeviceMemory;
using testing::Download;
using testing::ExpectedGather;
using testing::GatherCase;
using testing::MakeRows;
using testing::PoolFor;
using testing::RunGather;
using testing::RunScatter;
using testing::Upload;

class HostDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = NewHostDevice();
    auto stream = device_->NewStream();
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    stream_ = std::move(stream).value();
  }

  DeviceMemory Alloc(size_t bytes) {
    auto mem = DeviceMemory::Allocate(device_.get(), bytes);
    EXPECT_TRUE(mem.ok()) << mem.status().ToString();
    return mem.ok() ? std::move(mem).value() : DeviceMemory();
  }

  std::unique_ptr<Stream> NewStream() {
    auto stream = device_->NewStream();
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    return stream.ok() ? std::move(stream).value() : nullptr;
  }

  std::unique_ptr<Device> device_;
  std::unique_ptr<Stream> stream_;
};

bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

TEST(DeviceNamesTest, OutRowBytesAndNames) {
  EXPECT_EQ(OutRowBytes(OutType::kRaw, 256, 264), 264u);
  EXPECT_EQ(OutRowBytes(OutType::kF32, 256, 264), 1024u);
  EXPECT_EQ(OutRowBytes(OutType::kBF16, 256, 264), 512u);
  EXPECT_STREQ(OutTypeName(OutType::kRaw), "raw");
  EXPECT_STREQ(OutTypeName(OutType::kF32), "f32");
  EXPECT_STREQ(OutTypeName(OutType::kBF16), "bf16");
}

TEST(DeviceNamesTest, OpenDeviceParsesNames) {
  auto none = OpenDevice("none");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->get(), nullptr);
  auto emulated = OpenDevice("emulated");
  ASSERT_TRUE(emulated.ok()) << emulated.status().ToString();
  EXPECT_TRUE((*emulated)->emulated());
  EXPECT_NE((*emulated)->description().find("host-emulated"), std::string::npos);
  for (const std::string bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "CUDA", ""}) {
    auto r = OpenDevice(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_TRUE(Contains(r.status(), "'" + bad + "'")) << r.status().ToString();
  }
  // Either a device or a reason; never a crash.
  auto cuda = OpenDevice("cuda");
  std::string why;
  EXPECT_EQ(cuda.ok(), CudaDeviceAvailable(&why)) << why;
  if (!cuda.ok()) {
    EXPECT_TRUE(cuda.status().IsNotSupported()) << cuda.status().ToString();
    EXPECT_FALSE(why.empty());
  }
}

TEST(HostDeviceMemoryTest, MallocRespectsTheLimit) {
  HostDeviceOptions options;
  options.memory_limit_bytes = 1 << 20;
  auto device = NewHostDevice(options);
  EXPECT_NE(device->description().find("1048576"), std::string::npos) << device->description();
  auto a = device->Malloc(600000);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*a) % 64, 0u);
  auto b = device->Malloc(600000);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Status::Code::kResourceExhausted);
  EXPECT_TRUE(Contains(b.status(), "600000")) << b.status().ToString();
  EXPECT_TRUE(Contains(b.status(), "1048576")) << b.status().ToString();
  // Pinned memory is not device memory: no limit.
  auto pinned = device->MallocHost(2 << 20);
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*pinned) % 4096, 0u);
  device->FreeHost(*pinned);
  device->Free(*a);
  auto c = device->Malloc(600000);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto d = device->Malloc(1 << 20);  // 600000 + 1 MiB > 1 MiB
  EXPECT_FALSE(d.ok());
  device->Free(*c);
  auto whole = device->Malloc(1 << 20);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  device->Free(*whole);

  auto zero = device->Malloc(0);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(*zero, nullptr);
  device->Free(nullptr);
  device->FreeHost(nullptr);
  auto huge = device->Malloc(SIZE_MAX);
  EXPECT_FALSE(huge.ok());
}

TEST_F(HostDeviceTest, CopiesOfEveryKindAndMemset) {
  constexpr size_t kBytes = 10000;
  std::vector<uint8_t> host(kBytes);
  std::iota(host.begin(), host.end(), 0);
  DeviceMemory a = Alloc(kBytes), b = Alloc(kBytes);
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(a.get(), host.data(), kBytes, CopyKind::kHostToDevice, stream_.get()));
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(b.get(), a.get(), kBytes, CopyKind::kDeviceToDevice, stream_.get()));
  ENGRAM_ASSERT_OK(device_->MemsetAsync(b.get() + 100, 0x5a, 50, stream_.get()));
  std::vector<uint8_t> back(kBytes);
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(back.data(), b.get(), kBytes, CopyKind::kDeviceToHost, stream_.get()));
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(stream_.get()));
  for (size_t i = 0; i < kBytes; ++i) {
    const uint8_t want = i >= 100 && i < 150 ? 0x5a : static_cast<uint8_t>(i);
    ASSERT_EQ(back[i], want) << "byte " << i;
  }
  // Pinned memory is host memory for copies.
  auto pinned = device_->MallocHost(kBytes);
  ASSERT_TRUE(pinned.ok());
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(*pinned, a.get(), kBytes, CopyKind::kDeviceToHost, stream_.get()));
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(stream_.get()));
  EXPECT_EQ(std::memcmp(*pinned, host.data(), kBytes), 0);
  device_->FreeHost(*pinned);
  // Zero bytes: nothing to do, any pointers.
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(nullptr, nullptr, 0, CopyKind::kDeviceToDevice, stream_.get()));
}

TEST_F(HostDeviceTest, ChecksPointersAndStreamsAtEnqueue) {
  DeviceMemory a = Alloc(4096);
  std::vector<uint8_t> host(8192);
  auto expect_invalid = [](const Status& s, const std::string& text) {
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_TRUE(Contains(s, text)) << s.ToString() << " lacks " << text;
  };
  // Wrong kinds and ranges.
  expect_invalid(device_->CopyAsync(host.data(), host.data() + 4096, 16, CopyKind::kHostToDevice,
                                    stream_.get()),
                 "dst");
  expect_invalid(
      device_->CopyAsync(host.data(), host.data(), 16, CopyKind::kDeviceToHost, stream_.get()),
      "src");
  expect_invalid(device_->CopyAsync(a.get(), a.get(), 16, CopyKind::kHostToDevice, stream_.get()),
                 "overlaps device memory");
  expect_invalid(
      device_->CopyAsync(a.get(), host.data(), 16, CopyKind::kDeviceToDevice, stream_.get()),
      "src");
  expect_invalid(
      device_->CopyAsync(a.get() + 4000, host.data(), 100, CopyKind::kHostToDevice, stream_.get()),
      "not device memory");
  expect_invalid(device_->MemsetAsync(host.data(), 0, 16, stream_.get()), "MemsetAsync");
  expect_invalid(device_->CopyAsync(a.get(), nullptr, 16, CopyKind::kHostToDevice, stream_.get()),
                 "null");
  // Streams and events that are null or from another device.
  expect_invalid(device_->MemsetAsync(a.get(), 0, 16, nullptr), "stream is null");
  auto other = NewHostDevice();
  auto other_stream = other->NewStream();
  ASSERT_TRUE(other_stream.ok());
  expect_invalid(device_->MemsetAsync(a.get(), 0, 16, other_stream->get()), "not from this");
  auto other_event = other->Record(other_stream->get());
  ASSERT_TRUE(other_event.ok());
  expect_invalid(device_->Synchronize(other_event->get()), "not from this");
  expect_invalid(device_->WaitEvent(stream_.get(), other_event->get()), "not from this");
  expect_invalid(device_->Query(nullptr).status(), "event is null");
  // Nothing was enqueued by the failed calls.
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(stream_.get()));
}

TEST_F(HostDeviceTest, StreamRunsWorkInOrder) {
  constexpr int kOps = 2000;
  constexpr size_t kChunk = 64;
  DeviceMemory counter = Alloc(kChunk), log = Alloc(kOps * kChunk);
  for (int i = 0; i < kOps; ++i) {
    ENGRAM_ASSERT_OK(device_->MemsetAsync(counter.get(), i & 0xff, kChunk, stream_.get()));
    ENGRAM_ASSERT_OK(device_->CopyAsync(log.get() + i * kChunk, counter.get(), kChunk,
                                        CopyKind::kDeviceToDevice, stream_.get()));
  }
  auto back = Download(device_.get(), stream_.get(), log.get(), kOps * kChunk);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  for (int i = 0; i < kOps; ++i) {
    for (size_t j = 0; j < kChunk; ++j) {
      ASSERT_EQ((*back)[i * kChunk + j], i & 0xff) << "op " << i;
    }
  }
}

TEST_F(HostDeviceTest, EventsOrderWorkAcrossStreams) {
  constexpr size_t kBytes = 4 << 20;
  DeviceMemory a = Alloc(kBytes), b = Alloc(kBytes), c = Alloc(kBytes);
  auto producer = NewStream(), consumer = NewStream();
  ASSERT_TRUE(producer && consumer);
  // An event on an idle stream is done at once.
  auto idle = device_->Record(consumer.get());
  ASSERT_TRUE(idle.ok());
  auto idle_done = device_->Query(idle->get());
  ASSERT_TRUE(idle_done.ok());
  EXPECT_TRUE(*idle_done);
  // The producer does a long chain ending with a = 7; the consumer copies a only after it.
  for (int i = 0; i < 40; ++i) {
    ENGRAM_ASSERT_OK(device_->MemsetAsync(b.get(), i, kBytes, producer.get()));
    ENGRAM_ASSERT_OK(
        device_->CopyAsync(c.get(), b.get(), kBytes, CopyKind::kDeviceToDevice, producer.get()));
  }
  ENGRAM_ASSERT_OK(device_->MemsetAsync(a.get(), 7, kBytes, producer.get()));
  auto done = device_->Record(producer.get());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ENGRAM_ASSERT_OK(device_->WaitEvent(consumer.get(), done->get()));
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(b.get(), a.get(), kBytes, CopyKind::kDeviceToDevice, consumer.get()));
  auto copied = device_->Record(consumer.get());
  ASSERT_TRUE(copied.ok());
  ENGRAM_ASSERT_OK(device_->Synchronize(copied->get()));
  auto q = device_->Query(done->get());
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(*q);  // the consumer waited for it
  auto back = Download(device_.get(), consumer.get(), b.get(), kBytes);
  ASSERT_TRUE(back.ok());
  for (size_t i = 0; i < kBytes; i += 4093) ASSERT_EQ((*back)[i], 7) << "byte " << i;
  // The event outlives... nothing: destroying it before the waiting work has run is fine.
  auto late = device_->Record(producer.get());
  ASSERT_TRUE(late.ok());
  ENGRAM_ASSERT_OK(device_->WaitEvent(consumer.get(), late->get()));
  late->reset();
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(consumer.get()));
}

// Rows `slots` of a device pool (slot_bytes apart) as a device pointer array.
DeviceMemory RowPointers(Device* device, Stream* stream, const std::vector<const void*>& rows) {
  auto mem = Upload(device, stream, rows.data(), rows.size() * sizeof(void*));
  EXPECT_TRUE(mem.ok()) << mem.status().ToString();
  return mem.ok() ? std::move(mem).value() : DeviceMemory();
}

TEST_F(HostDeviceTest, ErrorsInWorkAreStickyOnTheirStream) {
  DeviceMemory pool = Alloc(4096), out = Alloc(4096), dst = Alloc(64);
  ENGRAM_ASSERT_OK(device_->MemsetAsync(pool.get(), 1, 4096, stream_.get()));
  ENGRAM_ASSERT_OK(device_->MemsetAsync(dst.get(), 2, 64, stream_.get()));
  DeviceMemory rows = RowPointers(device_.get(), stream_.get(),
                                  {pool.get(), pool.get() + 64, nullptr, pool.get() + 128});
  auto before = device_->Record(stream_.get());
  ASSERT_TRUE(before.ok());
  GatherArgs args;
  args.rows = reinterpret_cast<const void* const*>(rows.get());
  args.n = 4;
  args.row_bytes = 64;
  args.out_type = OutType::kRaw;
  args.out = out.get();
  args.out_stride = 64;
  ENGRAM_ASSERT_OK(device_->GatherAsync(args, stream_.get()));  // fails when it runs
  // Skipped: the stream has failed.
  ENGRAM_ASSERT_OK(device_->MemsetAsync(dst.get(), 3, 64, stream_.get()));
  auto after = device_->Record(stream_.get());
  ASSERT_TRUE(after.ok());

  const Status sync = device_->Synchronize(after->get());
  EXPECT_TRUE(sync.IsInvalidArgument()) << sync.ToString();
  EXPECT_TRUE(Contains(sync, "row 2 of 4 is a null pointer")) << sync.ToString();
  auto q = device_->Query(after->get());
  EXPECT_FALSE(q.ok());
  EXPECT_TRUE(device_->SynchronizeStream(stream_.get()).IsInvalidArgument());
  ENGRAM_ASSERT_OK(device_->Synchronize(before->get()));  // work before the failure is fine
  auto q_before = device_->Query(before->get());
  ASSERT_TRUE(q_before.ok());
  EXPECT_TRUE(*q_before);

  // A stream waiting on the failed work fails too; an unrelated stream does not.
  auto waiter = NewStream(), clean = NewStream();
  ENGRAM_ASSERT_OK(device_->WaitEvent(waiter.get(), after->get()));
  const Status waited = device_->SynchronizeStream(waiter.get());
  EXPECT_TRUE(Contains(waited, "WaitEvent")) << waited.ToString();
  auto back = Download(device_.get(), clean.get(), dst.get(), 64);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)[0], 2);  // the memset after the failure never ran
}

TEST_F(HostDeviceTest, RowsOutsideDeviceMemoryFailTheStream) {
  DeviceMemory out = Alloc(256);
  std::vector<uint8_t> host_row(64, 9);
  DeviceMemory rows = RowPointers(device_.get(), stream_.get(), {host_row.data()});
  GatherArgs args;
  args.rows = reinterpret_cast<const void* const*>(rows.get());
  args.n = 1;
  args.row_bytes = 64;
  args.out = out.get();
  args.out_stride = 64;
  ENGRAM_ASSERT_OK(device_->GatherAsync(args, stream_.get()));
  const Status s = device_->SynchronizeStream(stream_.get());
  EXPECT_TRUE(Contains(s, "not device or pinned memory")) << s.ToString();

  // A row running past the end of its allocation fails the same way (scatter too).
  auto stream = NewStream();
  DeviceMemory pool = Alloc(100), staging = Alloc(64);
  DeviceMemory dst = RowPointers(device_.get(), stream.get(), {pool.get() + 50});
  ScatterArgs scatter;
  scatter.src = staging.get();
  scatter.dst = reinterpret_cast<void* const*>(dst.get());
  scatter.n = 1;
  scatter.row_bytes = 64;
  ENGRAM_ASSERT_OK(device_->ScatterAsync(scatter, stream.get()));
  const Status s2 = device_->SynchronizeStream(stream.get());
  EXPECT_TRUE(Contains(s2, "ScatterAsync: row 0 of 1")) << s2.ToString();
}

TEST_F(HostDeviceTest, GatherChecksItsArguments) {
  DeviceMemory out = Alloc(1 << 16), rows = Alloc(64);
  GatherArgs ok;
  ok.rows = reinterpret_cast<const void* const*>(rows.get());
  ok.n = 4;
  ok.dtype = DType::kFp8E4M3Ue8m0;
  ok.dim = 256;
  ok.row_bytes = 264;
  ok.out_type = OutType::kBF16;
  ok.out = out.get();
  ok.out_stride = 512;
  auto expect_invalid = [&](GatherArgs a, const std::string& text) {
    const Status s = device_->GatherAsync(a, stream_.get());
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_TRUE(Contains(s, text)) << s.ToString() << " lacks " << text;
  };
  GatherArgs a = ok;
  a.out_stride = 500;
  expect_invalid(a, "out_stride 500 < 512");
  a = ok;
  a.row_bytes = 263;
  expect_invalid(a, "row_bytes 263 < 264");
  a = ok;
  a.dim = 100;
  expect_invalid(a, "multiple of 32");
  a = ok;
  a.out_type = OutType::kF32;
  a.out_stride = 1026;
  expect_invalid(a, "4-byte aligned");
  a = ok;
  a.rows = nullptr;
  expect_invalid(a, "rows is null");
  a = ok;
  a.out = nullptr;
  expect_invalid(a, "out is null");
  a = ok;
  a.out = out.get() + (1 << 16) - 512;  // 4 rows do not fit
  expect_invalid(a, "out");
  a = ok;
  a.dtype = static_cast<DType>(9);
  expect_invalid(a, "unknown dtype");
  a = ok;
  a.n = 0;
  a.rows = nullptr;
  ENGRAM_ASSERT_OK(device_->GatherAsync(a, stream_.get()));  // nothing to do
  ScatterArgs s;
  s.n = 1;
  s.row_bytes = 8;
  s.dst = reinterpret_cast<void* const*>(rows.get());
  EXPECT_TRUE(device_->ScatterAsync(s, stream_.get()).IsInvalidArgument());
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(stream_.get()));
}

TEST(HostDeviceGatherTest, EveryDtypeAndOutTypeMatchesDequantizeRow) {
  auto device = NewHostDevice();
  for (const GatherCase& c : AllGatherCases()) {
    SCOPED_TRACE(c.Name());
    const std::vector<uint8_t> pool = PoolFor(c);
    auto got = RunGather(device.get(), pool, c);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const std::vector<uint8_t> want = ExpectedGather(pool, c);
    ASSERT_EQ(got->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ((*got)[i], want[i]) << "byte " << i << " (row " << i / c.out_stride << ")";
    }
  }
}

TEST(HostDeviceGatherTest, DeviceNClampsTheRowCount) {
  auto device = NewHostDevice();
  GatherCase c;
  c.dtype = DType::kInt8;
  c.dim = 64;
  c.out_type = OutType::kF32;
  c.slot_bytes = c.row_bytes();
  c.out_stride = 64 * 4 + 8;
  for (size_t i = 0; i < 50; ++i) c.slots.push_back((i * 7) % 23);
  const std::vector<uint8_t> pool = MakeRows(c.dtype, c.dim, 23, c.slot_bytes, 5);
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{17}, uint64_t{50}, uint64_t{51},
                     uint64_t{1} << 40, ~uint64_t{0}}) {
    c.device_n = n;
    SCOPED_TRACE(c.Name());
    auto got = RunGather(device.get(), pool, c);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, ExpectedGather(pool, c));
    // Rows at and past the count are untouched.
    const size_t count = std::min<uint64_t>(n, 50);
    if (count < 50) {
      EXPECT_EQ((*got)[count * c.out_stride], testing::kUnwritten);
    }
  }
}

TEST(HostDeviceGatherTest, CpuTwinOnHostPointers) {
  const std::vector<uint8_t> pool = MakeRows(DType::kF16, 33, 10, 70, 9);
  std::vector<const void*> rows;
  for (int i : {3, 1, 4, 1, 5, 9, 2, 6}) rows.push_back(pool.data() + i * 70);
  std::vector<uint16_t> out(8 * 40, 0xffff);
  uint64_t n = 6;
  GatherArgs a;
  a.rows = rows.data();
  a.n = rows.size();
  a.dtype = DType::kF16;
  a.dim = 33;
  a.row_bytes = 66;
  a.out_type = OutType::kBF16;
  a.out = out.data();
  a.out_stride = 80;
  a.device_n = &n;
  ENGRAM_ASSERT_OK(CheckGatherArgs(a));
  GatherRowsCpu(a);
  std::vector<float> v(33);
  for (size_t r = 0; r < 8; ++r) {
    DequantizeRow(DType::kF16, 33, rows[r], v.data());
    for (size_t e = 0; e < 40; ++e) {
      const uint16_t want = r < n && e < 33 ? FloatToBFloat16(v[e]) : 0xffff;
      ASSERT_EQ(out[r * 40 + e], want) << "row " << r << " element " << e;
    }
  }
}

TEST(HostDeviceScatterTest, WritesOnlyTheTargetSlots) {
  auto device = NewHostDevice();
  for (uint32_t row_bytes : {1u, 13u, 128u, 264u}) {
    for (size_t slot_bytes : {size_t{row_bytes}, size_t{row_bytes} + 7}) {
      SCOPED_TRACE("row_bytes " + std::to_string(row_bytes) + ", slot " +
                   std::to_string(slot_bytes));
      constexpr size_t kSlots = 64;
      const std::vector<uint8_t> pool(kSlots * slot_bytes, testing::kPoolGap);
      std::vector<size_t> slots(kSlots);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), std::mt19937(row_bytes));
      slots.resize(40);
      std::vector<uint8_t> rows(slots.size() * row_bytes);
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(i * 31 + 1);
      auto got = RunScatter(device.get(), pool, slot_bytes, rows, row_bytes, slots);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      std::vector<uint8_t> want = pool;
      for (size_t i = 0; i < slots.size(); ++i) {
        std::memcpy(want.data() + slots[i] * slot_bytes, rows.data() + i * row_bytes, row_bytes);
      }
      EXPECT_EQ(*got, want);
    }
  }
}

TEST_F(HostDeviceTest, KernelsMayUsePinnedMemory) {
  // Zero-copy, as on CUDA: the pointer array and the output in pinned host memory.
  DeviceMemory pool = Alloc(1024);
  std::vector<uint8_t> data(1024);
  std::iota(data.begin(), data.end(), 0);
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(pool.get(), data.data(), 1024, CopyKind::kHostToDevice, stream_.get()));
  auto rows = device_->MallocHost(2 * sizeof(void*));
  auto out = device_->MallocHost(2 * 100);
  ASSERT_TRUE(rows.ok() && out.ok());
  const void* ptrs[2] = {pool.get() + 950, pool.get() + 17};
  std::memcpy(*rows, ptrs, sizeof(ptrs));
  GatherArgs a;
  a.rows = static_cast<const void* const*>(*rows);
  a.n = 2;
  a.row_bytes = 100;
  a.out = *out;
  a.out_stride = 100;
  // 950 + 100 > 1024: the first row does not fit in the pool.
  ENGRAM_ASSERT_OK(device_->GatherAsync(a, stream_.get()));
  EXPECT_FALSE(device_->SynchronizeStream(stream_.get()).ok());
  auto stream = NewStream();
  ptrs[0] = pool.get() + 800;
  std::memcpy(*rows, ptrs, sizeof(ptrs));
  ENGRAM_ASSERT_OK(device_->GatherAsync(a, stream.get()));
  ENGRAM_ASSERT_OK(device_->SynchronizeStream(stream.get()));
  EXPECT_EQ(std::memcmp(*out, data.data() + 800, 100), 0);
  EXPECT_EQ(std::memcmp(static_cast<uint8_t*>(*out) + 100, data.data() + 17, 100), 0);
  device_->FreeHost(*rows);
  device_->FreeHost(*out);
}

TEST_F(HostDeviceTest, FreeWaitsForQueuedWork) {
  constexpr size_t kBytes = 32 << 20;
  auto src = device_->Malloc(kBytes);
  ASSERT_TRUE(src.ok());
  DeviceMemory dst = Alloc(kBytes);
  for (int i = 0; i < 8; ++i) {
    ENGRAM_ASSERT_OK(device_->MemsetAsync(*src, 0x40 + i, kBytes, stream_.get()));
  }
  ENGRAM_ASSERT_OK(
      device_->CopyAsync(dst.get(), *src, kBytes, CopyKind::kDeviceToDevice, stream_.get()));
  device_->Free(*src);  // waits for the copy
  auto back = Download(device_.get(), stream_.get(), dst.get(), kBytes);
  ASSERT_TRUE(back.ok());
  for (size_t i = 0; i < kBytes; i += 65537) ASSERT_EQ((*back)[i], 0x47) << "byte " << i;
}

TEST_F(HostDeviceTest, DestroyingAStreamRunsItsQueue) {
  constexpr size_t kBytes = 1 << 20;
  DeviceMemory a = Alloc(kBytes);
  {
    auto s = NewStream();
    for (int i = 0; i < 100; ++i) {
      ENGRAM_ASSERT_OK(device_->MemsetAsync(a.get(), i, kBytes, s.get()));
    }
  }
  auto back = Download(device_.get(), stream_.get(), a.get(), kBytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)[0], 99);
  EXPECT_EQ((*back)[kBytes - 1], 99);
}

TEST(HostDeviceConcurrencyTest, ManyThreadsStreamsAndAllocations) {
  auto device = NewHostDevice();
  auto shared_stream = device->NewStream();
  ASSERT_TRUE(shared_stream.ok());
  constexpr int kThreads = 4;
  constexpr int kRounds = 30;
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    ++failures;
    ADD_FAILURE() << what;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto own = device->NewStream();
      if (!own.ok()) return fail(own.status().ToString());
      GatherCase c;
      c.dtype = static_cast<DType>(t % kNumDTypes);
      c.dim = 64;
      c.out_type = static_cast<OutType>(t % 3);
      c.slot_bytes = c.row_bytes() + t;
      c.out_stride = OutRowBytes(c.out_type, c.dim, c.row_bytes()) + 4;
      for (size_t i = 0; i < 100; ++i) c.slots.push_back((i * 13 + t) % 23);
      const std::vector<uint8_t> pool = MakeRows(c.dtype, c.dim, 23, c.slot_bytes, 77 + t);
      const std::vector<uint8_t> want = ExpectedGather(pool, c);
      for (int r = 0; r < kRounds; ++r) {
        // A whole gather on its own stream (allocations, copies, gather, frees).
        auto got = RunGather(device.get(), pool, c);
        if (!got.ok()) return fail(got.status().ToString());
        if (*got != want) return fail("gather differs in thread " + std::to_string(t));
        // A round trip through the shared stream, ordered by events against its own stream.
        std::vector<uint8_t> in(4096, static_cast<uint8_t>(t * 50 + r)), out(4096);
        auto buf = device->Malloc(4096);
        if (!buf.ok()) return fail(buf.status().ToString());
        Status s =
            device->CopyAsync(*buf, in.data(), 4096, CopyKind::kHostToDevice, shared_stream->get());
        auto ev = device->Record(shared_stream->get());
        if (!s.ok() || !ev.ok()) return fail("enqueue on the shared stream");
        s = device->WaitEvent(own->get(), ev->get());
        if (s.ok()) {
          s = device->CopyAsync(out.data(), *buf, 4096, CopyKind::kDeviceToHost, own->get());
        }
        if (s.ok()) s = device->SynchronizeStream(own->get());
        if (!s.ok()) return fail(s.ToString());
        if (out != in) return fail("round trip differs in thread " + std::to_string(t));
        auto q = device->Query(ev->get());
        if (!q.ok() || !*q) return fail("event not done after waiting on it");
        device->Free(*buf);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ENGRAM_ASSERT_OK(device->SynchronizeStream(shared_stream->get()));
}

}  // namespace
}  // namespace engram::gpu
