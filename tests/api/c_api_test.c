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
  CHECK(strcmp(es_version_string(), "0.1.0") == 0);
  CHECK(es_table_format_version() == 1);
  CHECK(es_dtype_row_bytes(ES_DTYPE_FP8_E4M3_UE8M0, 256) == 264);
  CHECK(es_dtype_row_bytes(ES_DTYPE_FP8_E4M3_UE8M0, 100) == 0);
  CHECK(strcmp(es_dtype_name(ES_DTYPE_BF16), "bf16") == 0);
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
  remove_tree(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
