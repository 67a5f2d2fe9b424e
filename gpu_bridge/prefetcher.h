// Prefetcher: asynchronous row fetches for an open Table, with an optional HBM tier.
//
// Engram's row ids are known as soon as a batch's tokens are, long before the layer runs:
//   TicketId t = Prefetch(ids, n);   // returns at once; NVMe reads, DRAM copies and
//                                    // host-to-device copies go on in the background
//   ... compute earlier layers ...
//   Wait(t);                          // usually already done
//   Gather(t, target);                // rows into the caller's buffer, no further I/O
//   Release(t);                       // unpins everything the ticket held
// One ticket per (step, layer) is the expected use; many may be in flight from many threads.
//
// Where a live ticket's rows are, and why nothing can change them under a reader (every row is
// pinned in the tier that holds it until Release/Cancel):
//   Host only (options.device == null): each row is resident memory, a row pinned in the DRAM
//     cache (cache::RowCache pin), or a copy in the ticket's share of the host staging arena
//     (rows read from NVMe; they are also offered to the DRAM cache).
//   With a device: each row is an HBM slot pinned in the HBM directory (a cache::RowCache with
//     row_bytes 0 and the same admission/eviction policy code as the DRAM tier, whose slot
//     numbers address a device slot pool), or a copy in the ticket's share of the device
//     staging arena. Misses are fetched from the Table (DRAM/NVMe) into pinned host staging,
//     copied to the device on a copy stream, and, when the HBM policy admits them, scattered
//     into HBM slots (reserved BUSY with BeginInsert, committed once the copy's event is done).
//
// Budget: host staging (host only) or pinned + device staging (with a device) is an arena of
// max_inflight_bytes; a ticket reserves n * row_bytes of it (plus its pointer arrays: 8 bytes
// per row host only, 16 with a device; each part rounded up to 256 bytes) when Prefetch is
// called and gives it back at Release/Cancel; at most max_tickets are live. When either is
// exhausted, Prefetch blocks until another ticket is released (block_when_full) or fails at
// once with ResourceExhausted; a single request larger than the whole arena is
// InvalidArgument. Staging and device memory never grow past what Create allocated (a
// ticket's bookkeeping, its ids and per-row state, is ordinary heap memory).
//
// Errors: ids out of range fail Prefetch at once (InvalidArgument naming the first bad id and
// its position); I/O and checksum errors of the fetch fail the ticket: Wait/Poll/Gather return
// that Status (naming the ticket), and the ticket must still be released. Using a ticket id
// that is not live (released, cancelled, never issued) is NotFound naming it; a second Release
// is such a use, and so is a Wait/Poll/Gather that a concurrent Cancel overtook.
//
// Gather plans (device prefetchers only): a gather whose kernel arguments never change, so a
// caller can capture it in a CUDA graph once and replay the graph every step:
//   GatherPlanId g = NewGatherPlan(max_rows, target);  // once: stable device arrays
//   BindGatherPlan(g, t0, s); capture LaunchGatherPlan(g, s) into a graph  // once
//   each step k:  BindGatherPlan(g, tk, s);   // tk's row pointers and count -> the arrays
//                 replay the graph on s (or LaunchGatherPlan(g, s));  Release(t(k-1))
// A plan owns, outside the staging arena, a device array of max_rows row pointers and a device
// row count (GatherArgs::device_n), plus a pinned host copy of both that Bind fills and copies
// from. Launch enqueues one kernel with the same GatherArgs on every call (rows = the array,
// n = max_rows, device_n = the count, out/out_stride/type = the plan's target): row i of the
// bound ticket's request goes to target.out + i * out_stride, and output rows from the
// ticket's row count up to max_rows are left untouched.
// The caller's part of the contract (what the prefetcher cannot see):
//   - The bound ticket must stay live until every launch or graph replay that reads it has
//     run. Release waits for the copies a Bind enqueued on a caller's stream, and Launch with
//     a null stream returns once the rows are written, but neither Release nor anything else
//     knows about later launches on a caller's stream or graph replays. A Bind on a caller's
//     stream also makes Release of the ticket bound before it wait for that Bind's copies, so
//     for everything enqueued on that stream before them: bind the next ticket on the stream
//     the launches run on, then release the previous one, and Release cannot overtake them.
//   - A Bind overwrites the arrays earlier launches read: enqueue it on the stream those
//     launches run on (or make sure they have run). Bind blocks the host and must not be
//     captured; Launch only enqueues the kernel and may be.
//   - A graph that captured a plan's launch must not run after FreeGatherPlan (or after the
//     prefetcher is destroyed), and target.out must stay valid while the plan is used.
//
// Thread safety: every method may be called from any thread. A ticket may be gathered several
// times, and from several threads, until it is released. Binds of one plan are serialised; a
// Bind racing with a Launch of the same plan gives whichever rows the device sees first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cache/cache_policy.h"
#include "gpu_bridge/device.h"
#include "storage/status.h"
#include "storage/table.h"

namespace engram::gpu {

// 0 is never a valid ticket.
using TicketId = uint64_t;
// 0 is never a valid gather plan.
using GatherPlanId = uint64_t;

struct PrefetchOptions {
  // The device the rows go to; not owned, must outlive the prefetcher. Null: host only,
  // gathers write host memory.
  Device* device = nullptr;
  // Staging arena: bytes of rows live tickets may hold outside the caches. 256 MiB holds a
  // prefill batch of 64k tokens x 24 rows x 128 B per layer, twice.
  uint64_t max_inflight_bytes = uint64_t{256} << 20;
  // Live tickets at most (issued and not yet released or cancelled).
  uint32_t max_tickets = 1024;
  // Budget exhausted: true blocks Prefetch until a ticket is released, false fails at once
  // with ResourceExhausted.
  bool block_when_full = true;
  // Threads that run fetches (each ticket's NVMe reads run on one of them; io_uring keeps
  // many reads in flight per thread).
  uint32_t fetch_threads = 2;
  // HBM tier on `device`: bytes of row slots (0 = none; REQUIRES device). Its directory uses
  // `hbm_policy` (null = the default policy) with `hbm_shards` shards.
  uint64_t hbm_cache_bytes = 0;
  uint32_t hbm_shards = 16;
  std::shared_ptr<const cache::PolicyFactory> hbm_policy;
  // Hot rows (a 1-D .npy of ids, most important first, as `tablectl profile` writes): pinned
  // in HBM at Create, up to cache::RowCacheOptions::max_pinned_share of each shard. The rows
  // that find no room there are returned by hot_rows_left() for the DRAM tier
  // (Table::PinRows). Empty: none.
  std::string hot_rows_path;
};

// Where Gather writes.
struct GatherTarget {
  void* out = nullptr;
  size_t out_stride = 0;  // bytes; REQUIRES >= OutRowBytes(type, dim, row_bytes)
  OutType type = OutType::kRaw;
  // true: `out` is device memory of the prefetcher's device (REQUIRES a device).
  bool on_device = false;
  // Device gathers only: the stream to enqueue the gather kernel on (the caller's, e.g. one
  // being captured into a CUDA graph). Gather then returns once the kernel is enqueued, and
  // Release waits for it before unpinning. Null: the prefetcher's own stream, and Gather
  // returns once the rows are written. Must be null for NewGatherPlan (Launch takes the
  // stream).
  Stream* stream = nullptr;
};

struct PrefetchStats {
  uint64_t tickets_issued = 0;
  uint64_t tickets_live = 0;
  uint64_t tickets_failed = 0;
  uint64_t tickets_cancelled = 0;
  uint64_t rows_requested = 0;   // ids passed to Prefetch
  uint64_t rows_unique = 0;      // after dedupe within each ticket
  uint64_t hbm_hits = 0;         // unique rows found pinned-able in HBM
  uint64_t hbm_inserts = 0;      // rows committed into HBM slots
  uint64_t rows_fetched = 0;     // unique rows fetched from the Table (DRAM cache/NVMe)
  uint64_t bytes_to_device = 0;  // host-to-device bytes
  uint64_t inflight_bytes = 0;   // arena bytes held by live tickets now
  uint64_t inflight_bytes_peak = 0;
  uint64_t blocked_prefetches = 0;   // Prefetch calls that had to wait for budget
  uint64_t rejected_prefetches = 0;  // ResourceExhausted (fail-fast mode)
  uint64_t hot_rows_pinned = 0;      // hot rows pinned in HBM at Create
  cache::RowCacheStats hbm;          // the HBM directory (zero without one)
};

class Prefetcher {
 public:
  // `table` must outlive the prefetcher. Allocates the arenas (and the HBM slot pool) now;
  // ResourceExhausted naming the size if the device has not that much memory.
  static Result<std::unique_ptr<Prefetcher>> Create(Table* table, const PrefetchOptions& options);
  // Cancels every live ticket, waits for the fetch threads, frees everything (plans too).
  ~Prefetcher();

  // Starts fetching ids[0..n) (any order, duplicates allowed; n == 0 gives a ticket that is
  // ready at once). See the file comment for budget and errors.
  Result<TicketId> Prefetch(const uint64_t* ids, size_t n);
  // Blocks until the ticket's rows are ready; the fetch's error if it failed.
  Status Wait(TicketId ticket);
  // true when ready, false while fetching; the fetch's error if it failed.
  Result<bool> Poll(TicketId ticket);
  // Waits if needed, then writes row i of the request (ids[i] of Prefetch) to
  // target.out + i * target.out_stride. No I/O.
  Status Gather(TicketId ticket, const GatherTarget& target);
  // Unpins and frees everything the ticket holds (after any gather enqueued on a caller's
  // stream has run; an error of such a gather is returned, the ticket is released anyway).
  // Releasing a ticket that is still fetching cancels it. The id is dead afterwards.
  Status Release(TicketId ticket);
  // Stops the ticket's fetch as soon as it can and frees everything it holds; returns once
  // that is done. The id is dead afterwards. Cancelling a ready ticket is Release.
  Status Cancel(TicketId ticket);

  // Gather plans (see the file comment). A plan for tickets of up to `max_rows` rows, writing
  // to `target` (REQUIRES: on_device, a null stream, out holding max_rows rows at out_stride).
  // NotSupported on a host-only prefetcher; InvalidArgument for a bad target, max_rows 0 or
  // more than one ticket can stage; ResourceExhausted when the device has not the memory.
  Result<GatherPlanId> NewGatherPlan(size_t max_rows, const GatherTarget& target);
  // Waits for `ticket` to be ready (its fetch's error if it failed), then enqueues on `stream`
  // the copies of its row pointers and row count into the plan's arrays and records the
  // binding. Null `stream`: the prefetcher's gather stream, done before return. The binding
  // replaces any earlier one (rebinding is how each step gets its rows). Errors that leave
  // the earlier binding in place: NotFound for a plan or ticket that is not live, the
  // ticket's fetch error, InvalidArgument naming both counts when the ticket has more rows
  // than the plan's max_rows. A later failure (of the copies) leaves the plan unbound.
  Status BindGatherPlan(GatherPlanId plan, TicketId ticket, Stream* stream = nullptr);
  // Enqueues the plan's gather kernel on `stream` (null: the prefetcher's gather stream, and
  // returns once the rows are written), with the same arguments on every call: what a caller
  // captures in a CUDA graph. Checked at the call only: InvalidArgument when the plan was
  // never bound (or its last Bind failed), NotFound when the bound ticket is no longer live.
  Status LaunchGatherPlan(GatherPlanId plan, Stream* stream = nullptr);
  // Frees the plan's arrays (after the copies of its last Bind). NotFound when not live.
  Status FreeGatherPlan(GatherPlanId plan);

  PrefetchStats stats() const;
  // Hot rows of options.hot_rows_path that found no room in HBM, in file order.
  const std::vector<uint64_t>& hot_rows_left() const;
  Device* device() const;
  Table* table() const;

  class Impl;

 private:
  explicit Prefetcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace engram::gpu
