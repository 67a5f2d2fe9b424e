/* engram-store C API: the stable, public interface of the library (libengram_store.so).
 *
 * Conventions (hold for every function below):
 *  - Opaque handles. Every es_X_create/es_X_open has exactly one matching es_X_destroy/es_X_close;
 *    passing NULL to those is a no-op.
 *  - Errors: functions that can fail take `char** errptr` last. On entry *errptr must be NULL
 *    or a message from an earlier call (it is then freed and replaced). On failure *errptr is
 *    set to a NUL-terminated message naming the problem, owned by the caller and freed with
 *    es_free(); on success it is left untouched. A function returning a handle returns NULL
 *    on failure. errptr itself may be NULL when the caller does not want the message.
 *  - Memory returned to the caller (strings) is freed with es_free() and nothing else.
 *  - No C++ exception ever crosses this boundary.
 *  - Thread safety: an es_table_t may be used by many threads at once for lookups, prefetch
 *    tickets and stats; es_table_close must not race with other calls on the same table
 *    (it cancels live tickets). Options are plain values: set them from one thread, then pass
 *    them anywhere (es_table_open copies them).
 */
#ifndef ENGRAM_STORE_API_ENGRAM_STORE_H_
#define ENGRAM_STORE_API_ENGRAM_STORE_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define ES_EXPORT __attribute__((visibility("default")))
#else
#define ES_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ---------------------------------------------------------------------------- */
#define ES_VERSION_MAJOR 0
#define ES_VERSION_MINOR 2
#define ES_VERSION_PATCH 0
ES_EXPORT int es_version_major(void);
ES_EXPORT int es_version_minor(void);
ES_EXPORT int es_version_patch(void);
/* "0.2.0"; a static string, never freed. */
ES_EXPORT const char* es_version_string(void);
/* Highest table format version this library reads and writes. */
ES_EXPORT uint32_t es_table_format_version(void);

/* ---- Types ------------------------------------------------------------------------------ */
typedef enum {
  ES_DTYPE_F32 = 0,
  ES_DTYPE_F16 = 1,
  ES_DTYPE_BF16 = 2,
  ES_DTYPE_INT8 = 3,          /* dim int8 values, then one float32 scale */
  ES_DTYPE_FP8_E4M3_UE8M0 = 4 /* dim e4m3 values, then dim/32 ue8m0 scales (256 -> 264 B) */
} es_dtype_t;

typedef enum {
  ES_DRAM_NONE = 0,     /* every lookup reads NVMe */
  ES_DRAM_RESIDENT = 1, /* the whole table in DRAM */
  ES_DRAM_CACHE = 2     /* a bounded DRAM cache over NVMe (default) */
} es_dram_mode_t;

typedef enum {
  ES_IO_AUTO = 0,  /* io_uring, else a pread thread pool (said once in the log and in info) */
  ES_IO_URING = 1, /* io_uring or fail */
  ES_IO_PREAD = 2  /* pread thread pool */
} es_io_backend_t;

typedef struct es_options_t es_options_t;
typedef struct es_table_t es_table_t;

/* Bytes of one row, or 0 when (dtype, dim) is invalid (dim 0; fp8 with dim not a multiple of 32).
 */
ES_EXPORT uint32_t es_dtype_row_bytes(es_dtype_t dtype, uint32_t dim);
/* "f32", "f16", "bf16", "int8", "fp8_e4m3_ue8m0"; static, never freed; NULL if unknown. */
ES_EXPORT const char* es_dtype_name(es_dtype_t dtype);

/* ---- Options (defaults documented per setter) ------------------------------------------- */
ES_EXPORT es_options_t* es_options_create(void);
ES_EXPORT void es_options_destroy(es_options_t* options);
/* Default ES_DRAM_CACHE. */
ES_EXPORT void es_options_set_dram_mode(es_options_t* options, es_dram_mode_t mode);
/* Row-data budget of the DRAM cache; default 1 GiB. */
ES_EXPORT void es_options_set_dram_cache_bytes(es_options_t* options, uint64_t bytes);
/* Resident mode: share one copy between processes (default 0). shared_dir NULL keeps /dev/shm. */
ES_EXPORT void es_options_set_shared_resident(es_options_t* options, int shared,
                                              const char* shared_dir);
/* Resident private mode: ask for transparent huge pages (default 1). */
ES_EXPORT void es_options_set_huge_pages(es_options_t* options, int enabled);
/* Default ES_IO_AUTO. */
ES_EXPORT void es_options_set_io_backend(es_options_t* options, es_io_backend_t backend);
/* NVMe reads in flight per ring; default 32. */
ES_EXPORT void es_options_set_queue_depth(es_options_t* options, uint32_t depth);
/* Admission/eviction policy of the DRAM cache by name; default "default" (docs/caching.md).
 * Also "clock", "sieve", "s3fifo", "sampled-lfu"; "lru" and "wtinylfu" are for trace replay
 * only. The name is copied; an unknown or replay-only name makes es_table_open fail naming it. */
ES_EXPORT void es_options_set_cache_policy(es_options_t* options, const char* name);
/* Hot rows to pin when the table opens: a 1-D .npy of row ids, most important first (as
 * `tablectl profile` writes). Default none; NULL clears. The path is copied. */
ES_EXPORT void es_options_set_hot_rows(es_options_t* options, const char* npy_path);

/* ---- Tables ----------------------------------------------------------------------------- */
/* Creates a table directory at `path` (which must not exist) of `rows` rows, filled with zeros
 * or (fill_random != 0) deterministic pseudo-random values of `seed`. */
ES_EXPORT void es_table_create(const char* path, uint64_t rows, uint32_t dim, es_dtype_t dtype,
                               int fill_random, uint64_t seed, char** errptr);
/* Opens a table; options may be NULL (defaults). Close with es_table_close. */
ES_EXPORT es_table_t* es_table_open(const char* path, const es_options_t* options, char** errptr);
ES_EXPORT void es_table_close(es_table_t* table);

ES_EXPORT uint64_t es_table_rows(const es_table_t* table);
ES_EXPORT uint32_t es_table_dim(const es_table_t* table);
ES_EXPORT es_dtype_t es_table_dtype(const es_table_t* table);
ES_EXPORT uint32_t es_table_row_bytes(const es_table_t* table);

/* Copies rows ids[0..n) to out + i * out_stride (out_stride >= row bytes). Ids are all checked
 * first: an out-of-range id is an error naming it, and nothing is written. n == 0 is a no-op.
 * Duplicate ids are fetched once. */
ES_EXPORT void es_table_lookup(es_table_t* table, const uint64_t* ids, size_t n, void* out,
                               size_t out_stride, char** errptr);

/* ---- Statistics ------------------------------------------------------------------------- */
typedef struct {
  char tier[16];       /* "dram" or "nvme" */
  uint64_t lookups;    /* rows asked of this tier */
  uint64_t hits;       /* rows it served */
  uint64_t misses;     /* rows it passed down */
  uint64_t bytes_read; /* bytes moved from its medium */
  uint64_t reads;      /* read operations timed */
  double read_p50_us;  /* read latency percentiles (power-of-two bucket bounds) */
  double read_p99_us;
} es_tier_stats_t;

/* Tiers in use, fastest first. */
ES_EXPORT size_t es_table_tier_count(const es_table_t* table);
/* Fills *out for tier index `tier` (< es_table_tier_count). */
ES_EXPORT void es_table_tier_stats(const es_table_t* table, size_t tier, es_tier_stats_t* out,
                                   char** errptr);
/* Everything `tablectl info --json` shows for an open table, as JSON; free with es_free. */
ES_EXPORT char* es_table_info_json(const es_table_t* table, char** errptr);

/* ---- Dequantisation --------------------------------------------------------------------- */
/* Decodes n rows of `dtype`/`dim` at rows + i * row_stride into dim floats at
 * out + i * out_stride (strides in bytes). Stored bytes are never changed. */
ES_EXPORT void es_dequantize(es_dtype_t dtype, uint32_t dim, const void* rows, size_t n,
                             size_t row_stride, float* out, size_t out_stride, char** errptr);

/* ---- Prefetch (docs/c-api.md, "Prefetch") ---------------------------------------------------
 * Rows fetched ahead of use: es_table_prefetch returns a ticket at once while reads (NVMe, DRAM,
 * host-to-device copies) go on in the background; es_ticket_wait / es_ticket_poll tell when
 * they are done; es_ticket_gather writes the rows (no I/O) to host memory or, with a device,
 * device memory, as stored or converted to f32 / bf16; es_ticket_release frees what the ticket
 * holds (its rows stay pinned in whatever tier holds them until then); es_ticket_cancel stops
 * a fetch and frees the same. A ticket is used by any thread until it is released or
 * cancelled; using it afterwards (a second release too) is an error naming it. The budget
 * (es_options_set_prefetch_budget) bounds the staging memory and the live tickets.
 * Opening with a device (es_options_set_device) adds an HBM tier when hbm_cache_bytes > 0;
 * hot rows (es_options_set_hot_rows) then go to HBM first and the rest to the DRAM cache.
 * Without a device the prefetcher is host only, made on first use, and gathers go to host
 * memory. */
typedef enum {
  ES_OUT_RAW = 0, /* the stored row bytes (es_table_row_bytes per row) */
  ES_OUT_F32 = 1, /* dim float32 (es_dequantize's values) */
  ES_OUT_BF16 = 2 /* dim bfloat16: the f32 values rounded to nearest even */
} es_out_type_t;

/* The device prefetched rows go to: "none" (default: host only), "emulated" (host memory
 * acting as a device, for tests without a GPU), "cuda" or "cuda:N". The name is copied; an
 * unknown name or a missing GPU makes es_table_open fail naming it. NULL = "none". */
ES_EXPORT void es_options_set_device(es_options_t* options, const char* name);
/* Bytes of HBM row slots on the device (default 0: no HBM tier; needs a device). */
ES_EXPORT void es_options_set_hbm_cache_bytes(es_options_t* options, uint64_t bytes);
/* Staging bytes live tickets may hold outside the caches (default 256 MiB), live tickets at
 * most (default 1024), and whether es_table_prefetch waits when either is exhausted
 * (block_when_full != 0, the default) or fails at once ("Resource exhausted"). */
ES_EXPORT void es_options_set_prefetch_budget(es_options_t* options, uint64_t max_inflight_bytes,
                                              uint32_t max_tickets, int block_when_full);

/* Starts fetching rows ids[0..n) (any order, duplicates allowed) and returns the ticket, or 0
 * on failure: an id out of range (named with its position), a request larger than the whole
 * staging budget, or (fail-fast budget) the budget exhausted. */
ES_EXPORT uint64_t es_table_prefetch(es_table_t* table, const uint64_t* ids, size_t n,
                                     char** errptr);
/* Blocks until the ticket's rows are ready: 0, or -1 with the fetch's (or the ticket's) error. */
ES_EXPORT int es_ticket_wait(es_table_t* table, uint64_t ticket, char** errptr);
/* 1 when ready, 0 while fetching, -1 on error. */
ES_EXPORT int es_ticket_poll(es_table_t* table, uint64_t ticket, char** errptr);
/* Waits if needed, then writes row i of the request (ids[i]) as `type` to out + i * out_stride
 * (out_stride in bytes, at least the output row). out_on_device: `out` is device memory of
 * the table's device (with the emulated device: host memory, written as by a host gather;
 * an error without a device). cuda_stream: NULL, or a
 * cudaStream_t (CUDA device and out_on_device only) to order the gather after the work
 * already queued on it and before the work queued after the call; the call then returns
 * without waiting and es_ticket_release waits for the gather. */
ES_EXPORT void es_ticket_gather(es_table_t* table, uint64_t ticket, void* out, size_t out_stride,
                                es_out_type_t type, int out_on_device, void* cuda_stream,
                                char** errptr);
/* Frees what the ticket holds; the ticket is dead afterwards. Releasing a ticket still
 * fetching cancels it. */
ES_EXPORT void es_ticket_release(es_table_t* table, uint64_t ticket, char** errptr);
/* Stops the ticket's fetch as soon as it can and frees what it holds (returns once done). */
ES_EXPORT void es_ticket_cancel(es_table_t* table, uint64_t ticket, char** errptr);

/* Gather plans (docs/c-api.md, "Gather plans"): a gather a CUDA graph can capture. The
 * arguments of es_ticket_gather's kernel differ for every ticket, so a graph that captured one
 * cannot be replayed for the next. A plan owns stable device arrays (row pointers and a row
 * count): es_gather_plan_bind fills them from a ticket, es_gather_plan_launch enqueues a kernel
 * whose arguments are the same on every call. Capture the launch once (cudaStreamBeginCapture
 * on the stream, es_gather_plan_launch, cudaStreamEndCapture) after a first bind; each step,
 * bind the step's ticket and replay the graph. CUDA devices only.
 * The caller keeps the bound ticket live until every launch or replay that reads it has run:
 * es_ticket_release waits for the copies a bind enqueued on a stream, but cannot know about
 * later launches on a stream or graph replays. Binding the next ticket on the stream the
 * launches run on and then releasing the previous one is safe: that release also waits for
 * the new bind, queued after the launches. A bind overwrites what earlier launches read, so
 * enqueue it on their stream. */
/* A plan for tickets of up to max_rows rows: row i of the bound ticket's request goes to
 * out + i * out_stride as `type` (out: device memory of the table's CUDA device with room for
 * max_rows rows; rows past the ticket's count are left untouched). Returns the plan (never 0),
 * or 0 with an error: no device or the emulated device (its kernels cannot write a C
 * caller's host memory), a bad type, stride or max_rows (0, or more than a ticket can hold). */
ES_EXPORT uint64_t es_gather_plan_create(es_table_t* table, size_t max_rows, void* out,
                                         size_t out_stride, es_out_type_t type, char** errptr);
/* Waits for the ticket's rows, then enqueues on cuda_stream (a cudaStream_t of the table's
 * device; NULL: the store's own stream, done before return) the copies that make the plan
 * gather this ticket. Blocks the host: not to be captured. Errors (the plan keeps its earlier
 * binding): a plan or ticket that is not live, the fetch's error, a ticket with more rows than
 * max_rows (both named). */
ES_EXPORT void es_gather_plan_bind(es_table_t* table, uint64_t plan, uint64_t ticket,
                                   void* cuda_stream, char** errptr);
/* Enqueues the plan's gather on cuda_stream (NULL: the store's own stream, and the call returns
 * once the rows are written) with the same kernel arguments on every call. Checked at the call
 * only: an error when the plan was never bound or its ticket has been released. */
ES_EXPORT void es_gather_plan_launch(es_table_t* table, uint64_t plan, void* cuda_stream,
                                     char** errptr);
/* Frees the plan (0 is a no-op); a graph that captured its launch must not run afterwards.
 * es_table_close frees the plans still live. */
ES_EXPORT void es_gather_plan_destroy(es_table_t* table, uint64_t plan, char** errptr);

/* The prefetcher's counters as JSON (device, tickets, rows, HBM tier); free with es_free. */
ES_EXPORT char* es_table_prefetch_stats_json(const es_table_t* table, char** errptr);

/* ---- Memory ----------------------------------------------------------------------------- */
/* Frees a string returned through errptr, by es_table_info_json or by
 * es_table_prefetch_stats_json. NULL is a no-op. */
ES_EXPORT void es_free(void* ptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENGRAM_STORE_API_ENGRAM_STORE_H_ */
