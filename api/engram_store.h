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
 *  - Thread safety: an es_table_t may be used by many threads at once for lookups and stats;
 *    es_table_close must not race with other calls on the same table. Options are plain
 *    values: set them from one thread, then pass them anywhere (es_table_open copies them).
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
#define ES_VERSION_MINOR 1
#define ES_VERSION_PATCH 0
ES_EXPORT int es_version_major(void);
ES_EXPORT int es_version_minor(void);
ES_EXPORT int es_version_patch(void);
/* "0.1.0"; a static string, never freed. */
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

/* ---- Memory ----------------------------------------------------------------------------- */
/* Frees a string returned through errptr or by es_table_info_json. NULL is a no-op. */
ES_EXPORT void es_free(void* ptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENGRAM_STORE_API_ENGRAM_STORE_H_ */
