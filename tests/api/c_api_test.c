#define _DEFAULT_SOURCE /* mkdtemp */
/* The C API from a plain C program (C11, no C++): every entry point, the error convention,
 * and lookups through each tier agreeing byte for byte. Prints "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/engram_store.h"

static int passed = 0, failed = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++passed;                                                                \
    } else {                                                                   \
      ++failed;                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

static char dir[256];

static void remove_tree(const char* path) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static void test_version(void) {
  CHECK(es_version_major() == ES_VERSION_MAJOR);
  CHECK(es_version_minor() == ES_VERSION_MINOR);
  CHECK(strcmp(es_version_string(), "0.2.0") == 0);
  CHECK(es_table_format_version() == 1);
  CHECK(es_dtype_row_bytes(ES_DTYPE_FP8_E4M3_UE8M0, 256) == 264);
  CHECK(es_dtype_row_bytes(ES_DTYPE_FP8_E4M3_UE8M0, 100) == 0);
  CHECK(strcmp(es_dtype_name(ES_DTYPE_BF16), "bf16") == 0);
  /* Codes outside every enum are reported, never undefined behaviour (UBSan runs this). */
  CHECK(es_dtype_name((es_dtype_t)1000) == NULL);
  CHECK(es_dtype_row_bytes((es_dtype_t)-1, 64) == 0);
}

static void test_lookup_through_every_tier(void) {
  char path[300];
  char* err = NULL;
  snprintf(path, sizeof(path), "%s/table", dir);
  es_table_create(path, 5000, 64, ES_DTYPE_F32, 1, 7, &err);
  CHECK(err == NULL);
  es_table_create(path, 5000, 64, ES_DTYPE_F32, 1, 7, &err); /* exists already */
  CHECK(err != NULL && strstr(err, "already exists") != NULL);
  es_free(err);
  err = NULL;

  uint64_t ids[300];
  for (int i = 0; i < 300; ++i) ids[i] = (uint64_t)(i * 7919) % 5000;
  ids[299] = ids[0]; /* a duplicate */
  static unsigned char results[3][300 * 256];
  es_dram_mode_t modes[3] = {ES_DRAM_RESIDENT, ES_DRAM_CACHE, ES_DRAM_NONE};
  for (int m = 0; m < 3; ++m) {
    es_options_t* opt = es_options_create();
    es_options_set_dram_mode(opt, modes[m]);
    es_options_set_dram_cache_bytes(opt, 64 * 1024);
    es_options_set_queue_depth(opt, 16);
    es_table_t* t = es_table_open(path, opt, &err);
    es_options_destroy(opt);
    CHECK(t != NULL && err == NULL);
    if (t == NULL) return;
    CHECK(es_table_rows(t) == 5000 && es_table_dim(t) == 64);
    CHECK(es_table_dtype(t) == ES_DTYPE_F32 && es_table_row_bytes(t) == 256);
    es_table_lookup(t, ids, 300, results[m], 256, &err);
    CHECK(err == NULL);
    CHECK(memcmp(results[m], results[m] + 299 * 256, 256) == 0);
    es_tier_stats_t st;
    size_t tiers = es_table_tier_count(t);
    CHECK(tiers == (modes[m] == ES_DRAM_CACHE ? 2u : 1u));
    es_table_tier_stats(t, 0, &st, &err);
    CHECK(err == NULL && st.lookups > 0);
    es_table_tier_stats(t, tiers, &st, &err);
    CHECK(err != NULL && strstr(err, "out of range") != NULL);
    es_free(err);
    err = NULL;
    char* info = es_table_info_json(t, &err);
    CHECK(info != NULL && strstr(info, "\"rows\": 5000") != NULL);
    es_free(info);
    es_table_close(t);
  }
  CHECK(memcmp(results[0], results[1], sizeof(results[0])) == 0);
  CHECK(memcmp(results[0], results[2], sizeof(results[0])) == 0);
  /* Random fill: values in [-1, 1), not all zero. */
  float v[64];
  es_dequantize(ES_DTYPE_F32, 64, results[0], 1, 256, v, sizeof(v), &err);
  CHECK(err == NULL);
  int nonzero = 0, in_range = 1;
  for (int i = 0; i < 64; ++i) {
    nonzero |= v[i] != 0.0f;
    in_range &= v[i] >= -1.0f && v[i] < 1.0f;
  }
  CHECK(nonzero && in_range);
}

static void test_errors(void) {
  char path[300];
  char* err = NULL;
  snprintf(path, sizeof(path), "%s/missing", dir);
  es_table_t* t = es_table_open(path, NULL, &err);
  CHECK(t == NULL);
  CHECK(err != NULL && strstr(err, "does not exist") != NULL);
  /* A second failure replaces (and frees) the first message. */
  t = es_table_open(NULL, NULL, &err);
  CHECK(t == NULL && err != NULL && strstr(err, "NULL") != NULL);
  es_free(err);
  err = NULL;
  CHECK(es_table_open(path, NULL, NULL) == NULL); /* errptr may be NULL */

  snprintf(path, sizeof(path), "%s/small", dir);
  es_table_create(path, 100, 8, ES_DTYPE_F16, 0, 0, &err);
  CHECK(err == NULL);
  t = es_table_open(path, NULL, &err);
  CHECK(t != NULL);
  uint64_t ids[3] = {1, 100, 2};
  unsigned char out[3 * 16];
  memset(out, 0x5a, sizeof(out));
  es_table_lookup(t, ids, 3, out, 16, &err);
  CHECK(err != NULL && strstr(err, "id 100") != NULL);
  CHECK(out[0] == 0x5a && out[47] == 0x5a); /* nothing written */
  es_free(err);
  err = NULL;
  es_table_lookup(t, ids, 0, out, 16, &err); /* empty batch */
  CHECK(err == NULL);
  es_table_lookup(t, ids, 1, out, 16, &err); /* zero fill */
  CHECK(err == NULL && out[0] == 0 && out[15] == 0);
  es_table_close(t);
  es_table_close(NULL);
  es_options_destroy(NULL);

  unsigned char f16[4] = {0x00, 0x3c, 0x00, 0xc0}; /* 1.0, -2.0 */
  float f[2];
  es_dequantize(ES_DTYPE_F16, 2, f16, 1, 4, f, 8, &err);
  CHECK(err == NULL && f[0] == 1.0f && f[1] == -2.0f);
  es_dequantize(ES_DTYPE_FP8_E4M3_UE8M0, 30, f16, 1, 4, f, 8, &err);
  CHECK(err != NULL && strstr(err, "multiple of 32") != NULL);
  es_free(err);
}

static void test_cache_options(void) {
  char path[300];
  char* err = NULL;
  snprintf(path, sizeof(path), "%s/policy", dir);
  es_table_create(path, 2000, 64, ES_DTYPE_F32, 1, 9, &err);
  CHECK(err == NULL);
  es_options_t* o = es_options_create();
  es_options_set_dram_cache_bytes(o, 64 << 10);

  es_options_set_cache_policy(o, "no-such-policy");
  CHECK(es_table_open(path, o, &err) == NULL);
  CHECK(err != NULL && strstr(err, "no-such-policy") != NULL);
  es_free(err);
  err = NULL;
  es_options_set_cache_policy(o, "lru"); /* replay only: its hits move list nodes */
  CHECK(es_table_open(path, o, &err) == NULL);
  CHECK(err != NULL && strstr(err, "replay") != NULL);
  es_free(err);
  err = NULL;

  es_options_set_cache_policy(o, "sieve");
  es_table_t* t = es_table_open(path, o, &err);
  CHECK(t != NULL && err == NULL);
  if (t != NULL) {
    uint64_t ids[2] = {7, 7};
    float rows[2][64];
    es_table_lookup(t, ids, 2, rows, sizeof(rows[0]), &err);
    es_table_lookup(t, ids, 2, rows, sizeof(rows[0]), &err);
    CHECK(err == NULL && memcmp(rows[0], rows[1], sizeof(rows[0])) == 0);
    char* info = es_table_info_json(t, &err);
    CHECK(info != NULL && strstr(info, "\"policy\": \"sieve\"") != NULL);
    es_free(info);
    es_table_close(t);
  }

  es_options_set_cache_policy(o, NULL); /* back to "default" */
  es_options_set_hot_rows(o, "/nonexistent/hot.npy");
  CHECK(es_table_open(path, o, &err) == NULL);
  CHECK(err != NULL && strstr(err, "hot rows") != NULL);
  es_free(err);
  err = NULL;
  es_options_set_hot_rows(o, NULL);
  t = es_table_open(path, o, &err);
  CHECK(t != NULL && err == NULL);
  es_table_close(t);
  es_options_destroy(o);
}

/* The integer after "key": in a JSON text, or -1. */
static long json_int(const char* json, const char* key) {
  char pattern[128];
  snprintf(pattern, sizeof(pattern), "\"%s\": ", key);
  const char* at = json ? strstr(json, pattern) : NULL;
  return at ? atol(at + strlen(pattern)) : -1;
}

/* A 1-D .npy (format 1.0) of uint64 ids: 10 bytes of magic, version and header length, then
 * the header dict padded with spaces to 118 bytes and a newline (128 in all), then the data. */
static int write_ids_npy(const char* path, const uint64_t* ids, size_t n) {
  char header[118 + 1];
  memset(header, ' ', sizeof(header));
  int len =
      snprintf(header, sizeof(header),
               "{'descr': '<u8', 'fortran_order': False, 'shape': (%lu,), }", (unsigned long)n);
  if (len <= 0 || len >= 117) return 0;
  header[len] = ' ';
  header[117] = '\n';
  FILE* f = fopen(path, "wb");
  if (f == NULL) return 0;
  const unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0};
  int ok = fwrite(magic, 1, 10, f) == 10 && fwrite(header, 1, 118, f) == 118 &&
           fwrite(ids, sizeof(uint64_t), n, f) == n;
  return fclose(f) == 0 && ok;
}

/* Tickets on a host-only table: gathers equal es_table_lookup (raw) and es_dequantize (f32),
 * and every misuse is an error naming it. */
static void test_prefetch_host_only(void) {
  char path[300];
  char* err = NULL;
  snprintf(path, sizeof(path), "%s/prefetch", dir);
  es_table_create(path, 2000, 64, ES_DTYPE_F32, 1, 11, &err);
  CHECK(err == NULL);
  es_table_t* t = es_table_open(path, NULL, &err);
  CHECK(t != NULL && err == NULL);
  if (t == NULL) return;
  uint64_t ids[50];
  for (int i = 0; i < 50; ++i) ids[i] = (uint64_t)(i * 37) % 2000;
  ids[49] = ids[1]; /* a duplicate */
  static unsigned char want[50 * 256], got[50 * 256];
  static float want_f[50 * 64], got_f[50 * 64];
  es_table_lookup(t, ids, 50, want, 256, &err);
  es_dequantize(ES_DTYPE_F32, 64, want, 50, 256, want_f, 256, &err);
  CHECK(err == NULL);

  uint64_t ticket = es_table_prefetch(t, ids, 50, &err);
  CHECK(ticket != 0 && err == NULL);
  CHECK(es_ticket_wait(t, ticket, &err) == 0 && err == NULL);
  CHECK(es_ticket_poll(t, ticket, &err) == 1);
  es_ticket_gather(t, ticket, got, 256, ES_OUT_RAW, 0, NULL, &err);
  CHECK(err == NULL && memcmp(got, want, sizeof(want)) == 0);
  es_ticket_gather(t, ticket, got_f, 256, ES_OUT_F32, 0, NULL, &err);
  CHECK(err == NULL && memcmp(got_f, want_f, sizeof(want_f)) == 0);
  es_ticket_gather(t, ticket, got, 128, ES_OUT_BF16, 0, NULL, &err);
  CHECK(err == NULL);

  /* Misuse of a live ticket: each an error, the ticket still fine afterwards. */
  es_ticket_gather(t, ticket, got, 256, ES_OUT_RAW, 1, NULL, &err); /* no device */
  CHECK(err != NULL && strstr(err, "without a device") != NULL);
  es_ticket_gather(t, ticket, got, 256, ES_OUT_RAW, 0, (void*)got, &err); /* a "stream" */
  CHECK(err != NULL && strstr(err, "CUDA stream") != NULL);
  es_ticket_gather(t, ticket, got, 256, (es_out_type_t)7, 0, NULL, &err);
  CHECK(err != NULL && strstr(err, "output type") != NULL);
  es_ticket_gather(t, ticket, got, 100, ES_OUT_RAW, 0, NULL, &err);
  CHECK(err != NULL && strstr(err, "stride 100") != NULL);
  es_free(err);
  err = NULL;

  /* Gather plans need a CUDA device: every call says so, and nothing is made. */
  CHECK(es_gather_plan_create(t, 50, got, 256, ES_OUT_RAW, &err) == 0);
  CHECK(err != NULL && strstr(err, "need a CUDA device") != NULL);
  es_gather_plan_bind(t, 1, ticket, NULL, &err);
  CHECK(err != NULL && strstr(err, "need a CUDA device") != NULL);
  es_gather_plan_launch(t, 1, NULL, &err);
  CHECK(err != NULL && strstr(err, "need a CUDA device") != NULL);
  es_gather_plan_destroy(t, 1, &err);
  CHECK(err != NULL && strstr(err, "need a CUDA device") != NULL);
  CHECK(es_gather_plan_create(t, 50, got, 256, (es_out_type_t)9, &err) == 0);
  CHECK(err != NULL && strstr(err, "output type") != NULL);
  CHECK(es_gather_plan_create(NULL, 50, got, 256, ES_OUT_RAW, &err) == 0);
  CHECK(err != NULL && strstr(err, "table is NULL") != NULL);
  es_gather_plan_launch(NULL, 1, NULL, &err);
  CHECK(err != NULL && strstr(err, "table is NULL") != NULL);
  es_free(err);
  err = NULL;
  es_gather_plan_destroy(t, 0, &err); /* 0 is a no-op */
  CHECK(err == NULL);

  char* stats = es_table_prefetch_stats_json(t, &err);
  CHECK(stats != NULL && json_int(stats, "tickets_live") == 1);
  CHECK(json_int(stats, "rows_requested") == 50 && json_int(stats, "rows_unique") == 49);
  es_free(stats);

  es_ticket_release(t, ticket, &err);
  CHECK(err == NULL);
  /* Dead: a second release, wait, poll, gather and cancel are errors naming the ticket. */
  char name[64];
  snprintf(name, sizeof(name), "ticket %llu", (unsigned long long)ticket);
  es_ticket_release(t, ticket, &err);
  CHECK(err != NULL && strstr(err, name) != NULL && strstr(err, "Not found") != NULL);
  CHECK(es_ticket_wait(t, ticket, &err) == -1);
  CHECK(es_ticket_poll(t, ticket, &err) == -1);
  es_ticket_gather(t, ticket, got, 256, ES_OUT_RAW, 0, NULL, &err);
  CHECK(err != NULL && strstr(err, name) != NULL);
  es_ticket_cancel(t, 987654, &err);
  CHECK(err != NULL && strstr(err, "ticket 987654") != NULL);
  es_free(err);
  err = NULL;

  /* An id out of range fails the prefetch at once, naming it. */
  uint64_t bad[3] = {1, 2000, 3};
  CHECK(es_table_prefetch(t, bad, 3, &err) == 0);
  CHECK(err != NULL && strstr(err, "id 2000 at position 1") != NULL);
  es_free(err);
  err = NULL;
  /* Cancelling a ticket frees it too. */
  ticket = es_table_prefetch(t, ids, 50, &err);
  CHECK(ticket != 0);
  es_ticket_cancel(t, ticket, &err);
  CHECK(err == NULL);
  stats = es_table_prefetch_stats_json(t, &err);
  CHECK(json_int(stats, "tickets_live") == 0 && json_int(stats, "inflight_bytes") == 0);
  es_free(stats);
  es_table_close(t);
}

/* The emulated device with an HBM tier and hot rows: device gathers agree with lookups, the
 * hot rows fill HBM first and the DRAM cache with the rest, the fail-fast budget refuses a
 * third ticket, and bad device options fail es_table_open. */
static void test_prefetch_emulated_device(void) {
  char path[300], hot_path[300];
  char* err = NULL;
  snprintf(path, sizeof(path), "%s/prefetch", dir); /* made by test_prefetch_host_only */
  snprintf(hot_path, sizeof(hot_path), "%s/hot.npy", dir);
  uint64_t hot[100];
  for (int i = 0; i < 100; ++i) hot[i] = (uint64_t)(i * 13 + 5) % 2000;
  CHECK(write_ids_npy(hot_path, hot, 100));

  es_options_t* o = es_options_create();
  es_options_set_device(o, "emulated");
  es_options_set_hbm_cache_bytes(o, 64 * 256);
  es_options_set_dram_cache_bytes(o, 1024 * 256);
  es_options_set_hot_rows(o, hot_path);
  es_options_set_prefetch_budget(o, 1 << 20, 2, 0);
  es_table_t* t = es_table_open(path, o, &err);
  CHECK(t != NULL && err == NULL);
  if (t == NULL) {
    fprintf(stderr, "%s\n", err);
    es_free(err);
    es_options_destroy(o);
    return;
  }
  char* stats = es_table_prefetch_stats_json(t, &err);
  char* info = es_table_info_json(t, &err);
  long in_hbm = json_int(stats, "hot_rows_pinned"), in_dram = json_int(info, "hot_rows_pinned");
  CHECK(in_hbm > 0 && in_dram > 0 && in_hbm + in_dram == 100);
  CHECK(strstr(stats, "host-emulated") != NULL);
  es_free(stats);
  es_free(info);

  static unsigned char want[100 * 256], got[100 * 256];
  es_table_lookup(t, hot, 100, want, 256, &err);
  uint64_t a = es_table_prefetch(t, hot, 100, &err);
  uint64_t b = es_table_prefetch(t, hot, 10, &err);
  CHECK(a != 0 && b != 0 && err == NULL);
  CHECK(es_table_prefetch(t, hot, 1, &err) == 0); /* max_tickets 2, fail fast */
  CHECK(err != NULL && strstr(err, "Resource exhausted") != NULL);
  es_free(err);
  err = NULL;
  /* The emulated device's memory is host memory: a "device" gather lands in `got`. */
  es_ticket_gather(t, a, got, 256, ES_OUT_RAW, 1, NULL, &err);
  CHECK(err == NULL && memcmp(got, want, sizeof(want)) == 0);
  memset(got, 0, sizeof(got));
  es_ticket_gather(t, a, got, 256, ES_OUT_RAW, 0, NULL, &err);
  CHECK(err == NULL && memcmp(got, want, sizeof(want)) == 0);
  es_ticket_gather(t, a, got, 256, ES_OUT_RAW, 1, (void*)got, &err); /* emulated: no stream */
  CHECK(err != NULL && strstr(err, "CUDA stream") != NULL);
  es_free(err);
  err = NULL;
  /* No gather plans on the emulated device; ids that were never made are named. */
  CHECK(es_gather_plan_create(t, 100, got, 256, ES_OUT_RAW, &err) == 0);
  CHECK(err != NULL && strstr(err, "Not supported") != NULL && strstr(err, "CUDA device") != NULL);
  es_gather_plan_bind(t, 5, a, NULL, &err);
  CHECK(err != NULL && strstr(err, "gather plan 5") != NULL && strstr(err, "Not found") != NULL);
  es_gather_plan_launch(t, 5, NULL, &err);
  CHECK(err != NULL && strstr(err, "gather plan 5") != NULL);
  es_gather_plan_launch(t, 5, (void*)got, &err); /* emulated: no stream */
  CHECK(err != NULL && strstr(err, "CUDA stream") != NULL);
  es_gather_plan_destroy(t, 5, &err);
  CHECK(err != NULL && strstr(err, "gather plan 5") != NULL);
  es_free(err);
  err = NULL;
  es_ticket_release(t, a, &err);
  es_ticket_cancel(t, b, &err);
  CHECK(err == NULL);
  stats = es_table_prefetch_stats_json(t, &err);
  /* Every hot row in HBM was an HBM hit of ticket a (b's 10 rows may add a few). */
  long hbm_hits = json_int(stats, "hbm_hits");
  CHECK(hbm_hits >= in_hbm && hbm_hits <= in_hbm + 10);
  CHECK(json_int(stats, "rejected_prefetches") == 1);
  CHECK(json_int(stats, "tickets_live") == 0);
  es_free(stats);
  es_table_close(t);

  es_options_set_device(o, "tpu");
  CHECK(es_table_open(path, o, &err) == NULL);
  CHECK(err != NULL && strstr(err, "unknown device 'tpu'") != NULL);
  es_options_set_device(o, NULL); /* none, but still an HBM size */
  CHECK(es_table_open(path, o, &err) == NULL);
  CHECK(err != NULL && strstr(err, "needs a device") != NULL);
  es_free(err);
  es_options_destroy(o);
}

int main(void) {
  const char* base = getenv("ENGRAM_TEST_TMPDIR");
  snprintf(dir, sizeof(dir), "%s/engram-c-api-XXXXXX", base ? base : "/var/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  test_version();
  test_lookup_through_every_tier();
  test_errors();
  test_cache_options();
  test_prefetch_host_only();
  test_prefetch_emulated_device();
  remove_tree(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
