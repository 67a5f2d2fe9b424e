/* engram-store C API, part 2: the Engram n-gram hasher (libengram_store.so).
 *
 * Turns raw token ids into the row ids of an Engram layer's table, bit-exact with the
 * reference demo (deepseek-ai/Engram engram_demo_v1.py) as BRIEF section 3 defines it, so a
 * runtime can hash each batch on its own schedule and prefetch the rows right after.
 * The exact definition (token compression, multipliers, primes, offsets, dead tokens) is in
 * model/ngram_hash.h; the config format (CFG.json) in model/engram_config.h.
 *
 * Conventions: those of api/engram_store.h, unchanged:
 *  - Opaque handles; every es_X_create has exactly one es_X_destroy; destroy(NULL) is a no-op.
 *  - `char** errptr` last on every function that can fail. *errptr must be NULL or an earlier
 *    message (freed and replaced); on failure it receives a message owned by the caller, freed
 *    with es_free() (api/engram_store.h) and nothing else; on success it is left untouched.
 *    A function returning a handle returns NULL on failure. errptr may be NULL.
 *  - No C++ exception ever crosses this boundary.
 *  - Arrays are pointer + sizes given beside them, row-major (C order), ids int64.
 *  - Thread safety: an es_hasher_t is immutable after creation: any number of threads may hash
 *    with it at once. An es_hash_state_t (one request's history) is used by one thread at a
 *    time; distinct states may be used concurrently.
 *
 * Output layout: for every position, num_columns values in (n, j) order: order n = 2..N
 * (N = max_ngram_size), head j = 0..H-1 (H = n_head_per_ngram), column (n-2)*H + j. Without
 * offsets a value is the head's hash, in [0, table_size[column]); with offsets it is the row id
 * in the layer's stacked table, hash + offset[column], in [0, total_rows).
 *
 * Dead tokens: dead_mask arguments are NULL or one byte per id, non-zero meaning dead; the
 * config's dead_token_ids are dead too. See model/ngram_hash.h for what dead does.
 */
#ifndef ENGRAM_STORE_API_ENGRAM_HASH_H_
#define ENGRAM_STORE_API_ENGRAM_HASH_H_

#include <stddef.h>
#include <stdint.h>

#include "api/engram_store.h" /* ES_EXPORT, es_free */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_hasher_t es_hasher_t;
typedef struct es_hash_state_t es_hash_state_t;

/* ---- Hasher ----------------------------------------------------------------------------- */
/* Creates the hasher of Engram layer `layer_id` from a CFG.json file; a relative token_map
 * path in it is resolved against the file's directory. Destroy with es_hasher_destroy. */
ES_EXPORT es_hasher_t* es_hasher_create_from_file(const char* config_path, int64_t layer_id,
                                                  char** errptr);
/* The same from JSON text of json_len bytes; a relative token_map path is resolved against
 * base_dir (NULL or "": the process's current directory). */
ES_EXPORT es_hasher_t* es_hasher_create_from_json(const char* json, size_t json_len,
                                                  const char* base_dir, int64_t layer_id,
                                                  char** errptr);
ES_EXPORT void es_hasher_destroy(es_hasher_t* hasher);

ES_EXPORT int64_t es_hasher_layer_id(const es_hasher_t* hasher);
/* N. */
ES_EXPORT uint32_t es_hasher_max_ngram_size(const es_hasher_t* hasher);
/* H. */
ES_EXPORT uint32_t es_hasher_heads_per_ngram(const es_hasher_t* hasher);
/* (N - 1) * H: values per position. */
ES_EXPORT uint32_t es_hasher_num_columns(const es_hasher_t* hasher);
/* Copies the num_columns table sizes (primes) to out[0 .. num_columns). */
ES_EXPORT void es_hasher_table_sizes(const es_hasher_t* hasher, int64_t* out);
/* Copies the num_columns row offsets to out[0 .. num_columns). */
ES_EXPORT void es_hasher_offsets(const es_hasher_t* hasher, int64_t* out);
/* Rows of the layer's stacked table (sum of the table sizes). */
ES_EXPORT uint64_t es_hasher_total_rows(const es_hasher_t* hasher);
/* Copies the N multipliers to out[0 .. N). */
ES_EXPORT void es_hasher_multipliers(const es_hasher_t* hasher, int64_t* out);
/* The pad id after compression. */
ES_EXPORT int64_t es_hasher_compressed_pad_id(const es_hasher_t* hasher);

/* Hashes a [batch, seq_len] array of raw ids, each row its own sequence (nothing before it
 * but pad), into out[batch][seq_len][num_columns]. with_offsets != 0 writes row ids.
 * dead_mask: NULL or batch * seq_len bytes. An id outside the token map is an error naming it
 * (negative ids pass through uncompressed, as in the reference). */
ES_EXPORT void es_hasher_hash(const es_hasher_t* hasher, const int64_t* ids, size_t batch,
                              size_t seq_len, const uint8_t* dead_mask, int with_offsets,
                              int64_t* out, char** errptr);

/* ---- Request state (decoding) ----------------------------------------------------------- */
/* One request's history: its last N-1 tokens (compressed, with dead flags), initially all pad.
 * A state fits every hasher of the same config (all its layers): hash every layer with it,
 * then commit once. Destroy with es_hash_state_destroy. */
ES_EXPORT es_hash_state_t* es_hash_state_create(const es_hasher_t* hasher, char** errptr);
ES_EXPORT void es_hash_state_destroy(es_hash_state_t* state);
/* Back to all pad (a new request). */
ES_EXPORT void es_hash_state_reset(es_hash_state_t* state);
/* Appends n raw ids (e.g. the accepted prefix after speculative decoding) to the history.
 * dead_mask: NULL or n bytes. On error the state is unchanged. */
ES_EXPORT void es_hash_state_commit(es_hash_state_t* state, const es_hasher_t* hasher,
                                    const int64_t* ids, const uint8_t* dead_mask, size_t n,
                                    char** errptr);

/* Varlen batch: request r owns ids[cu_seqlens[r] .. cu_seqlens[r+1]); cu_seqlens has
 * num_requests + 1 non-decreasing entries starting at 0. out receives
 * cu_seqlens[num_requests] * num_columns values, position-major, in the same order as ids.
 * states: NULL (every request starts fresh) or num_requests pointers (a NULL entry: fresh);
 * each request continues its state's history. commit != 0 then appends every request's ids
 * to its state (for speculative decoding pass 0 and call es_hash_state_commit with the
 * accepted prefix). All ids are checked before anything is written to a state: on error no
 * state changes. With commit the non-NULL states must be distinct. dead_mask: NULL or
 * cu_seqlens[num_requests] bytes. */
ES_EXPORT void es_hasher_hash_varlen(const es_hasher_t* hasher, const int64_t* ids,
                                     const int64_t* cu_seqlens, size_t num_requests,
                                     es_hash_state_t* const* states, const uint8_t* dead_mask,
                                     int with_offsets, int commit, int64_t* out, char** errptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENGRAM_STORE_API_ENGRAM_HASH_H_ */
