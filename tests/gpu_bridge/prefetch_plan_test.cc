// Gather plans (Prefetcher::NewGatherPlan / BindGatherPlan / LaunchGatherPlan): one plan bound
// to ticket after ticket gathers each ticket's rows exactly as Table::Lookup returns them (raw,
// f32, bf16; duplicates; with and without an HBM tier; on the prefetcher's stream and on
// callers'), with the same kernel arguments on every launch (seen through a recording Device);
// Release waits for a bind's copies on a caller's stream; every misuse is a Status naming it.
// A CUDA twin captures a launch in a real CUDA graph and replays it for two tickets (skips
// without a GPU).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "gpu_bridge/prefetcher.h"
#include "tests/gpu_bridge/device_test_util.h"
#include "tests/gpu_bridge/prefetch_test_util.h"
#include "tests/support/temp_dir.h"

#if defined(ENGRAM_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace engram::gpu {
namespace {

using engram::testing::TempDir;
using testing::ExpectedOut;
using testing::MakeTable;
using testing::OpenRig;
using testing::Rig;
using testing::TableOpts;
using testing::Tier;
using testing::TierName;

// A Device that forwards everything to another one and records the arguments of each
// GatherAsync.
class RecordingDevice final : public Device {
 public:
  explicit RecordingDevice(std::unique_ptr<Device> inner) : inner_(std::move(inner)) {}

  std::vector<GatherArgs> gathers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return gathers_;
  }

  std::string description() const override { return "recording " + inner_->description(); }
  bool emulated() const override { return inner_->emulated(); }
  Result<void*> Malloc(size_t bytes) override { return inner_->Malloc(bytes); }
  void Free(void* ptr) override { inner_->Free(ptr); }
  Result<void*> MallocHost(size_t bytes) override { return inner_->MallocHost(bytes); }
  void FreeHost(void* ptr) override { inner_->FreeHost(ptr); }
  Result<std::unique_ptr<Stream>> NewStream() override { return inner_->NewStream(); }
  Result<std::unique_ptr<Stream>> WrapStream(void* native_handle) override {
    return inner_->WrapStream(native_handle);
  }
  Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                   Stream* stream) override {
    return inner_->CopyAsync(dst, src, bytes, kind, stream);
  }
  Status MemsetAsync(void* dst, int value, size_t bytes, Stream* stream) override {
    return inner_->MemsetAsync(dst, value, bytes, stream);
  }
  Status GatherAsync(const GatherArgs& args, Stream* stream) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gathers_.push_back(args);
    }
    return inner_->GatherAsync(args, stream);
  }
  Status ScatterAsync(const ScatterArgs& args, Stream* stream) override {
    return inner_->ScatterAsync(args, stream);
  }
  Result<std::unique_ptr<Event>> Record(Stream* stream) override { return inner_->Record(stream); }
  Status WaitEvent(Stream* stream, Event* event) override {
    return inner_->WaitEvent(stream, event);
  }
  Result<bool> Query(Event* event) override { return inner_->Query(event); }
  Status Synchronize(Event* event) override { return inner_->Synchronize(event); }
  Status SynchronizeStream(Stream* stream) override { return inner_->SynchronizeStream(stream); }

 private:
  const std::unique_ptr<Device> inner_;
  mutable std::mutex mu_;
  std::vector<GatherArgs> gathers_;  // GUARDED_BY(mu_)
};

bool SameArgs(const GatherArgs& a, const GatherArgs& b) {
  return a.rows == b.rows && a.n == b.n && a.dtype == b.dtype && a.dim == b.dim &&
         a.row_bytes == b.row_bytes && a.out_type == b.out_type && a.out == b.out &&
         a.out_stride == b.out_stride && a.device_n == b.device_n;
}

// A prefetcher over `path` on a RecordingDevice over the host-emulated device (with an HBM tier
// of 256 rows when `hbm`).
Result<Rig> OpenRecordingRig(const std::string& path, bool hbm, RecordingDevice** recorder) {
  Rig rig;
  ENGRAM_ASSIGN_OR_RETURN(rig.table, Table::Open(path, TableOpts(DramMode::kCache)));
  auto device = std::make_unique<RecordingDevice>(NewHostDevice());
  *recorder = device.get();
  rig.device = std::move(device);
  PrefetchOptions o;
  o.device = rig.device.get();
  if (hbm) {
    o.hbm_cache_bytes = uint64_t{256} * rig.table->row_bytes();
    o.hbm_shards = 4;
  }
  ENGRAM_ASSIGN_OR_RETURN(rig.prefetcher, Prefetcher::Create(rig.table.get(), o));
  return rig;
}

// Requests of different sizes over [0, rows), each with duplicates, overlapping each other (so
// later ones find HBM hits), the last one empty.
std::vector<std::vector<uint64_t>> Requests(uint64_t rows, size_t max_rows) {
  std::mt19937_64 rng(7);
  std::vector<std::vector<uint64_t>> requests;
  for (size_t n : {max_rows, size_t{17}, max_rows - 40, size_t{1}, max_rows}) {
    std::vector<uint64_t> ids(n);
    for (auto& id : ids) id = rng() % (rows / 4);  // a quarter of the table: repeats
    if (n > 3) ids[n - 1] = ids[1];
    requests.push_back(ids);
  }
  requests.push_back({});
  return requests;
}

// What the plan's output buffer holds after gathering `ids`: their rows as Table::Lookup has
// them, converted to `type`, then 0xab (the fill) up to max_rows.
std::vector<uint8_t> WantedOut(Table& table, const std::vector<uint64_t>& ids, OutType type,
                               size_t stride, size_t max_rows) {
  const size_t n = ids.size();
  const size_t row = table.row_bytes();
  std::vector<uint8_t> rows(std::max<size_t>(n, 1) * row);
  EXPECT_TRUE(table.Lookup(ids.data(), n, rows.data(), row).ok());
  std::vector<uint8_t> want =
      ExpectedOut(table.dtype(), table.dim(), rows.data(), row, n, type, stride);
  want.resize(max_rows * stride, 0xab);
  return want;
}

Result<std::vector<uint8_t>> ReadBack(Device* d, const void* src, size_t bytes) {
  std::vector<uint8_t> host(bytes);
  ENGRAM_ASSIGN_OR_RETURN(auto stream, d->NewStream());
  ENGRAM_RETURN_IF_ERROR(
      d->CopyAsync(host.data(), src, bytes, CopyKind::kDeviceToHost, stream.get()));
  ENGRAM_RETURN_IF_ERROR(d->SynchronizeStream(stream.get()));
  return host;
}

Status Fill(Device* d, void* dst, size_t bytes) {
  ENGRAM_ASSIGN_OR_RETURN(auto stream, d->NewStream());
  ENGRAM_RETURN_IF_ERROR(d->MemsetAsync(dst, 0xab, bytes, stream.get()));
  return d->SynchronizeStream(stream.get());
}

struct Shape {
  DType dtype;
  uint32_t dim;
};

class GatherPlanTest : public ::testing::TestWithParam<Shape> {};

// One plan per output type, bound to each ticket in turn (the next bound before the previous
// is released, as a step loop does), binds and launches alternating between the prefetcher's
// stream, a caller's stream and the device's default stream: every launch writes what
// Table::Lookup returns for that ticket, and every launch enqueued identical arguments.
TEST_P(GatherPlanTest, EachBoundTicketGathersWhatLookupReturnsWithTheSameArguments) {
  const auto [dtype, dim] = GetParam();
  TempDir dir;
  const std::string path = dir.Sub("t");
  constexpr uint64_t kRows = 3000;
  constexpr size_t kMaxRows = 300;
  ASSERT_TRUE(MakeTable(path, kRows, dim, dtype).ok());
  for (bool hbm : {false, true}) {
    RecordingDevice* recorder = nullptr;
    auto rig = OpenRecordingRig(path, hbm, &recorder);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    Prefetcher& p = *rig->prefetcher;
    Device* d = rig->device.get();
    auto caller = d->NewStream();
    auto default_stream = d->WrapStream(nullptr);
    ASSERT_TRUE(caller.ok() && default_stream.ok());
    Stream* streams[3] = {nullptr, caller->get(), default_stream->get()};
    size_t launches = 0;
    for (OutType type : {OutType::kRaw, OutType::kF32, OutType::kBF16}) {
      SCOPED_TRACE(std::string(hbm ? "hbm " : "no hbm ") + OutTypeName(type));
      const size_t stride = OutRowBytes(type, dim, rig->table->row_bytes()) + 16;
      testing::DeviceBuffer out(d, kMaxRows * stride);
      GatherTarget target;
      target.out = out.get();
      target.out_stride = stride;
      target.type = type;
      target.on_device = true;
      auto plan = p.NewGatherPlan(kMaxRows, target);
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      TicketId previous = 0;
      const auto requests = Requests(kRows, kMaxRows);
      for (size_t k = 0; k < requests.size(); ++k) {
        SCOPED_TRACE("ticket " + std::to_string(k) + " of " + std::to_string(requests[k].size()) +
                     " rows");
        const std::vector<uint64_t>& ids = requests[k];
        auto t = p.Prefetch(ids.data(), ids.size());
        ASSERT_TRUE(t.ok()) << t.status().ToString();
        Stream* bind_stream = streams[k % 3];
        Stream* launch_stream = streams[(k + k / 3) % 3];
        ENGRAM_ASSERT_OK(p.BindGatherPlan(*plan, *t, bind_stream));
        if (bind_stream != nullptr && launch_stream != bind_stream) {
          ENGRAM_ASSERT_OK(d->SynchronizeStream(bind_stream));  // the caller orders its streams
        }
        if (previous != 0) ENGRAM_ASSERT_OK(p.Release(previous));
        ENGRAM_ASSERT_OK(Fill(d, out.get(), kMaxRows * stride));
        ENGRAM_ASSERT_OK(p.LaunchGatherPlan(*plan, launch_stream));
        ++launches;
        if (launch_stream != nullptr) ENGRAM_ASSERT_OK(d->SynchronizeStream(launch_stream));
        auto got = ReadBack(d, out.get(), kMaxRows * stride);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        const auto want = WantedOut(*rig->table, ids, type, stride, kMaxRows);
        for (size_t i = 0; i < kMaxRows; ++i) {
          ASSERT_EQ(0, std::memcmp(got->data() + i * stride, want.data() + i * stride, stride))
              << (i < ids.size() ? "row " + std::to_string(ids[i]) + " at position "
                                 : "unused position ")
              << i;
        }
        previous = *t;
      }
      ENGRAM_ASSERT_OK(p.Release(previous));
      ENGRAM_ASSERT_OK(p.FreeGatherPlan(*plan));
    }
    // Every GatherAsync was a plan launch (no host gathers here), and all launches of a plan
    // enqueued identical arguments: rows and device_n are the plan's arrays, n its max_rows.
    const std::vector<GatherArgs> gathers = recorder->gathers();
    ASSERT_EQ(gathers.size(), launches);
    const size_t per_plan = launches / 3;
    for (size_t plan = 0; plan < 3; ++plan) {
      const GatherArgs& first = gathers[plan * per_plan];
      EXPECT_EQ(first.n, kMaxRows);
      EXPECT_NE(first.device_n, nullptr);
      for (size_t i = 1; i < per_plan; ++i) {
        EXPECT_TRUE(SameArgs(first, gathers[plan * per_plan + i]))
            << "plan " << plan << " launch " << i << " changed its kernel arguments";
      }
    }
    EXPECT_FALSE(SameArgs(gathers[0], gathers[per_plan]));  // other plans, other targets
    const PrefetchStats s = p.stats();
    EXPECT_EQ(s.tickets_live, 0u);
    EXPECT_EQ(s.inflight_bytes, 0u);
    if (hbm) {
      EXPECT_GT(s.hbm_hits, 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GatherPlanTest,
                         ::testing::Values(Shape{DType::kInt8, 61}, Shape{DType::kBF16, 64},
                                           Shape{DType::kFp8E4M3Ue8m0, 256}),
                         [](const auto& info) {
                           return std::string(DTypeName(info.param.dtype)) + "_" +
                                  std::to_string(info.param.dim);
                         });

class GatherPlanErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("t");
    ASSERT_TRUE(MakeTable(path_, 1000, 32, DType::kF32).ok());  // 128-byte rows
    auto rig = OpenRig(path_, TableOpts(DramMode::kCache), Tier::kEmulated);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    rig_ = std::move(rig).value();
    out_ = std::make_unique<testing::DeviceBuffer>(rig_.device.get(), 16 * 128);
    target_.out = out_->get();
    target_.out_stride = 128;
    target_.on_device = true;
  }
  Prefetcher& p() { return *rig_.prefetcher; }
  TicketId Ready(const std::vector<uint64_t>& ids) {
    auto t = p().Prefetch(ids.data(), ids.size());
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_TRUE(t.ok() && p().Wait(*t).ok());
    return t.ok() ? *t : 0;
  }
  // The first `n` rows of the output buffer.
  std::vector<uint8_t> Out(size_t n) {
    auto got = ReadBack(rig_.device.get(), out_->get(), n * 128);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::vector<uint8_t>{};
  }

  TempDir dir_;
  std::string path_;
  Rig rig_;
  std::unique_ptr<testing::DeviceBuffer> out_;
  GatherTarget target_;
};

void ExpectError(const Status& st, Status::Code code, const std::string& text) {
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_NE(st.message().find(text), std::string::npos) << st.ToString();
}

TEST_F(GatherPlanErrorTest, HostOnlyPrefetcherHasNoPlans) {
  auto host = OpenRig(path_, TableOpts(DramMode::kCache), Tier::kHostOnly);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  std::vector<uint8_t> out(16 * 128);
  GatherTarget target;
  target.out = out.data();
  target.out_stride = 128;
  ExpectError(host->prefetcher->NewGatherPlan(16, target).status(), Status::Code::kNotSupported,
              "host only");
  target.on_device = true;
  ExpectError(host->prefetcher->NewGatherPlan(16, target).status(), Status::Code::kNotSupported,
              "plans need a device");
  ExpectError(host->prefetcher->LaunchGatherPlan(1), Status::Code::kNotFound, "gather plan 1");
  ExpectError(host->prefetcher->FreeGatherPlan(1), Status::Code::kNotFound, "gather plan 1");
}

TEST_F(GatherPlanErrorTest, BadPlansAreInvalidArgument) {
  GatherTarget t = target_;
  t.on_device = false;
  ExpectError(p().NewGatherPlan(16, t).status(), Status::Code::kInvalidArgument, "device memory");
  t = target_;
  auto stream = rig_.device->NewStream();
  ASSERT_TRUE(stream.ok());
  t.stream = stream->get();
  ExpectError(p().NewGatherPlan(16, t).status(), Status::Code::kInvalidArgument,
              "stream must be null");
  t = target_;
  t.out = nullptr;
  ExpectError(p().NewGatherPlan(16, t).status(), Status::Code::kInvalidArgument, "null");
  t = target_;
  t.out_stride = 100;
  ExpectError(p().NewGatherPlan(16, t).status(), Status::Code::kInvalidArgument, "stride 100");
  t = target_;
  t.type = OutType::kF32;
  t.out_stride = 130;  // not a multiple of 4
  ExpectError(p().NewGatherPlan(16, t).status(), Status::Code::kInvalidArgument, "gather plan");
  ExpectError(p().NewGatherPlan(0, target_).status(), Status::Code::kInvalidArgument,
              "max_rows is 0");
  ExpectError(p().NewGatherPlan(size_t{1} << 40, target_).status(), Status::Code::kInvalidArgument,
              "more than a ticket can hold");
  // Wrapping a native stream needs CUDA.
  int dummy = 0;
  EXPECT_TRUE(rig_.device->WrapStream(&dummy).status().IsNotSupported());
}

TEST_F(GatherPlanErrorTest, MisuseIsNamedAndLeavesTheBindingAlone) {
  auto plan = p().NewGatherPlan(4, target_);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ExpectError(p().LaunchGatherPlan(*plan), Status::Code::kInvalidArgument, "not bound");

  const std::vector<uint64_t> three = {9, 400, 9};
  const TicketId small = Ready(three);
  ENGRAM_ASSERT_OK(p().BindGatherPlan(*plan, small));
  const std::vector<uint64_t> five = {1, 2, 3, 4, 5};
  const TicketId big = Ready(five);
  const Status st = p().BindGatherPlan(*plan, big);
  ExpectError(st, Status::Code::kInvalidArgument, "5 rows");
  EXPECT_NE(st.message().find("max_rows 4"), std::string::npos) << st.ToString();
  ExpectError(p().BindGatherPlan(*plan, 12345), Status::Code::kNotFound, "ticket 12345");
  // Still bound to `small`: a launch gathers its rows.
  ENGRAM_ASSERT_OK(p().LaunchGatherPlan(*plan));
  const std::vector<uint8_t> got = Out(3);
  for (size_t i = 0; i < three.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(got.data() + i * 128,
                             testing::ExpectedRow(DType::kF32, 32, three[i]).data(), 128))
        << "position " << i;
  }
  // Unknown plans.
  for (GatherPlanId bogus : {GatherPlanId{0}, *plan + 1000}) {
    const std::string name = "gather plan " + std::to_string(bogus);
    ExpectError(p().BindGatherPlan(bogus, small), Status::Code::kNotFound, name);
    ExpectError(p().LaunchGatherPlan(bogus), Status::Code::kNotFound, name);
    ExpectError(p().FreeGatherPlan(bogus), Status::Code::kNotFound, name);
  }
  // The bound ticket released: the launch is refused at the call.
  ENGRAM_ASSERT_OK(p().Release(small));
  ExpectError(p().LaunchGatherPlan(*plan), Status::Code::kNotFound,
              "ticket " + std::to_string(small));
  // Freed: every use is NotFound.
  ENGRAM_ASSERT_OK(p().FreeGatherPlan(*plan));
  const std::string name = "gather plan " + std::to_string(*plan);
  ExpectError(p().BindGatherPlan(*plan, big), Status::Code::kNotFound, name);
  ExpectError(p().LaunchGatherPlan(*plan), Status::Code::kNotFound, name);
  ExpectError(p().FreeGatherPlan(*plan), Status::Code::kNotFound, name);
  ENGRAM_ASSERT_OK(p().Release(big));
  EXPECT_EQ(p().stats().tickets_live, 0u);
}

// A bind on a caller's stream is work Release waits for: when that stream has failed, the bind
// returns at once but Release of the ticket it bound, and of the ticket bound before it,
// report the failure.
TEST_F(GatherPlanErrorTest, ReleaseWaitsForTheBindOnTheCallersStream) {
  Device* d = rig_.device.get();
  auto plan = p().NewGatherPlan(4, target_);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const TicketId first = Ready({1, 2});
  ENGRAM_ASSERT_OK(p().BindGatherPlan(*plan, first));
  const TicketId second = Ready({3});

  // Break the caller's stream: a gather whose row pointer is null fails when it runs.
  auto stream = d->NewStream();
  ASSERT_TRUE(stream.ok());
  testing::DeviceBuffer null_rows(d, sizeof(void*));
  const void* null_row = nullptr;
  ENGRAM_ASSERT_OK(d->CopyAsync(null_rows.get(), &null_row, sizeof(null_row),
                                CopyKind::kHostToDevice, stream->get()));
  GatherArgs bad;
  bad.rows = static_cast<const void* const*>(null_rows.get());
  bad.n = 1;
  bad.row_bytes = 128;
  bad.out = out_->get();
  bad.out_stride = 128;
  ENGRAM_ASSERT_OK(d->GatherAsync(bad, stream->get()));

  ENGRAM_ASSERT_OK(p().BindGatherPlan(*plan, second, stream->get()));  // enqueued only
  ExpectError(p().Release(first), Status::Code::kInvalidArgument, "null pointer");
  ExpectError(p().Release(second), Status::Code::kInvalidArgument, "null pointer");
  // The failed copies are reported once more, to the next bind of the plan.
  const TicketId third = Ready({4});
  ExpectError(p().BindGatherPlan(*plan, third), Status::Code::kInvalidArgument, "previous bind");
  ExpectError(p().LaunchGatherPlan(*plan), Status::Code::kInvalidArgument, "not bound");
  ENGRAM_ASSERT_OK(p().BindGatherPlan(*plan, third));
  ENGRAM_ASSERT_OK(p().LaunchGatherPlan(*plan));
  EXPECT_EQ(0, std::memcmp(Out(1).data(), testing::ExpectedRow(DType::kF32, 32, 4).data(), 128));
  ENGRAM_ASSERT_OK(p().Release(third));
  EXPECT_EQ(p().stats().tickets_live, 0u);
}

#if defined(ENGRAM_HAVE_CUDA)
// On a GPU: a launch captured once into a CUDA graph on the caller's own cudaStream_t (wrapped
// with WrapStream), replayed after binding each ticket, gathers that ticket's rows.
TEST(GatherPlanCudaTest, CapturedLaunchReplaysForEachBoundTicket) {
  std::string why;
  if (!CudaDeviceAvailable(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  TempDir dir;
  const std::string path = dir.Sub("t");
  constexpr uint64_t kRows = 3000;
  constexpr size_t kMaxRows = 256;
  const DType dtype = DType::kFp8E4M3Ue8m0;
  const uint32_t dim = 256;
  ASSERT_TRUE(MakeTable(path, kRows, dim, dtype).ok());
  for (Tier tier : {Tier::kCuda, Tier::kCudaHbm}) {
    SCOPED_TRACE(TierName(tier));
    auto rig = OpenRig(path, TableOpts(DramMode::kCache), tier);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    Prefetcher& p = *rig->prefetcher;
    Device* d = rig->device.get();
    cudaStream_t native = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&native, cudaStreamNonBlocking), cudaSuccess);
    auto wrapped = d->WrapStream(native);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
    Stream* s = wrapped->get();
    const size_t stride = OutRowBytes(OutType::kBF16, dim, rig->table->row_bytes());
    testing::DeviceBuffer out(d, kMaxRows * stride);
    GatherTarget target;
    target.out = out.get();
    target.out_stride = stride;
    target.type = OutType::kBF16;
    target.on_device = true;
    auto plan = p.NewGatherPlan(kMaxRows, target);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();

    const auto requests = Requests(kRows, kMaxRows);
    std::vector<TicketId> tickets;
    for (size_t k = 0; k < 2; ++k) {
      auto t = p.Prefetch(requests[k].data(), requests[k].size());
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ENGRAM_ASSERT_OK(p.Wait(*t));
      tickets.push_back(*t);
    }
    ENGRAM_ASSERT_OK(p.BindGatherPlan(*plan, tickets[0], s));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(native, cudaStreamCaptureModeRelaxed), cudaSuccess);
    const Status launched = p.LaunchGatherPlan(*plan, s);
    ASSERT_EQ(cudaStreamEndCapture(native, &graph), cudaSuccess);
    ENGRAM_ASSERT_OK(launched);
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (size_t k = 0; k < tickets.size(); ++k) {
      SCOPED_TRACE("ticket " + std::to_string(k));
      if (k > 0) ENGRAM_ASSERT_OK(p.BindGatherPlan(*plan, tickets[k], s));
      ENGRAM_ASSERT_OK(d->MemsetAsync(out.get(), 0xab, kMaxRows * stride, s));
      ASSERT_EQ(cudaGraphLaunch(exec, native), cudaSuccess);
      ENGRAM_ASSERT_OK(d->SynchronizeStream(s));
      auto got = ReadBack(d, out.get(), kMaxRows * stride);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      const auto want = WantedOut(*rig->table, requests[k], OutType::kBF16, stride, kMaxRows);
      for (size_t i = 0; i < kMaxRows; ++i) {
        ASSERT_EQ(0, std::memcmp(got->data() + i * stride, want.data() + i * stride, stride))
            << "position " << i << " of " << requests[k].size();
      }
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    for (TicketId t : tickets) ENGRAM_ASSERT_OK(p.Release(t));
    ENGRAM_ASSERT_OK(p.FreeGatherPlan(*plan));
    wrapped->reset();
    cudaStreamDestroy(native);
  }
}
#else
TEST(GatherPlanCudaTest, CapturedLaunchReplaysForEachBoundTicket) {
  GTEST_SKIP() << "no CUDA device: engram-store was built without CUDA";
}
#endif

}  // namespace
}  // namespace engram::gpu
