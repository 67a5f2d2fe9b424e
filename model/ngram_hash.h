// N-gram multi-head hashing of the Engram layer, bit-exact with the reference demo
// (deepseek-ai/Engram engram_demo_v1.py, NgramHashMapping) and BRIEF section 3.
//
// For one layer L of an EngramConfig:
//   - raw token ids are compressed through the token map (raw id -> compressed id); a negative
//     raw id passes through unchanged, as the reference's CompressedTokenizer leaves it; a raw
//     id >= the map's size is InvalidArgument naming it. pad_id is compressed the same way.
//   - multipliers m[0..N) (N = max_ngram_size) = default_rng(seed + 10007 * L)
//     .integers(0, bound, N, int64) * 2 + 1, bound = max(1, (INT64_MAX // V) // 2), V the
//     compressed vocabulary size (max + 1 of the map);
//   - table sizes: for each layer in layer_ids order, for n = 2..N, for each of the H heads, the
//     smallest prime above the previous candidate start that no earlier head (of any layer)
//     took; each order's search starts at engram_vocab_size[n-2] - 1;
//   - for position t and component k (k = 0 is the token at t, k = 1 the one before, ...):
//     c_k = compressed token at t - k, or the compressed pad id before the sequence start;
//     mix_n = XOR_{k<n} (c_k * m[k]) in wrapping int64; head j of order n gives
//     mix_n mod prime[n][j], the non-negative remainder (numpy's % with a positive divisor).
//   - columns are ordered (n, j): column (n - 2) * H + j; the layer's table stacks the heads in
//     that order, so row id = hash + offset[column], offsets the running sum of the primes.
//
// Dead tokens (DeepSeek-V4.1: image and padding positions), our definition: a position is dead
// when the caller's mask says so or its raw id is in the config's dead_token_ids. For position
// t let d be the smallest k >= 0 whose token t - k is dead (d = N when none of t, t-1, ...,
// t-N+1 is). Components k >= d use the compressed pad id; components k < d are the tokens as
// usual. So a dead current token makes every component pad, and a dead token one step back
// leaves only c_0. Without dead tokens this is exactly the reference.
//
// Decoding: an NgramHistory carries the last N-1 compressed tokens of a request (and their
// dead flags) across calls; a fresh history is all pad, none dead, which is what the reference
// uses before the sequence start. Hashing a request in pieces, committing each piece to its
// history, gives exactly the hashes of the whole sequence at once. For speculative decoding,
// hash the draft tokens without committing, then Commit only the accepted prefix.
//
// Thread safety: an NgramHasher is immutable after Create; any number of threads may hash with
// it at once. An NgramHistory is a value used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/engram_config.h"
#include "model/token_map.h"
#include "storage/env.h"
#include "storage/status.h"

namespace engram::model {

// Deterministic Miller-Rabin: exact for every 64-bit n.
bool IsPrime64(uint64_t n);

// Table sizes (primes) of every layer of `config`, in layer_ids order, each with
// num_columns() entries in (n, j) order. InvalidArgument if a prime would pass INT64_MAX.
Result<std::vector<std::vector<int64_t>>> ComputeTablePrimes(const EngramConfig& config);

// The N multipliers of layer `layer_id` for compressed vocabulary size V (>= 1).
Result<std::vector<int64_t>> ComputeMultipliers(const EngramConfig& config,
                                                int64_t compressed_vocab_size, int64_t layer_id);

// a mod p with the sign of p (numpy int64 % for p > 0), by multiplication (Lemire's direct
// remainder with a 128-bit reciprocal) instead of a division. Exact for every int64 a.
class Int64Modulus {
 public:
  Int64Modulus() = default;
  // REQUIRES: p >= 1.
  explicit Int64Modulus(int64_t p);
  int64_t divisor() const { return static_cast<int64_t>(p_); }
  int64_t Mod(int64_t a) const {
    const uint64_t u = static_cast<uint64_t>(a);
    const unsigned __int128 low = m_ * u;  // fractional part of u / p, 128 bits
    const unsigned __int128 lo_part =
        static_cast<unsigned __int128>(static_cast<uint64_t>(low)) * p_;
    const unsigned __int128 hi_part =
        static_cast<unsigned __int128>(static_cast<uint64_t>(low >> 64)) * p_;
    const uint64_t r = static_cast<uint64_t>((hi_part + (lo_part >> 64)) >> 64);  // u mod p
    // For a < 0, u = a + 2^64, so a mod p = (r - 2^64 mod p) mod p.
    const uint64_t sub = a < 0 ? two64_mod_p_ : 0;
    const uint64_t res = r - sub;
    return static_cast<int64_t>(r < sub ? res + p_ : res);
  }

 private:
  uint64_t p_ = 1;
  unsigned __int128 m_ = 0;  // ceil(2^128 / p) mod 2^128
  uint64_t two64_mod_p_ = 0;
};

class NgramHasher;

// The last max_ngram_size - 1 compressed tokens of one request and their dead flags, oldest
// first. A history belongs to a config geometry (its size), not to one layer: one history per
// request serves every layer of the same config (commit once per step, after all layers).
class NgramHistory {
 public:
  // An empty (size 0) history; Reset it with a hasher before use.
  NgramHistory() = default;
  // All pad, none dead, sized for `hasher`.
  explicit NgramHistory(const NgramHasher& hasher);

  void Reset(const NgramHasher& hasher);
  int size() const { return size_; }
  int64_t token(int i) const { return tokens_[i]; }
  bool dead(int i) const { return dead_[i] != 0; }
  // Appends compressed tokens (dead may be null: none dead), keeping the last size() of them.
  void AppendCompressed(const int64_t* tokens, const uint8_t* dead, size_t n);

 private:
  int size_ = 0;
  std::array<int64_t, kMaxNgramSize - 1> tokens_{};
  std::array<uint8_t, kMaxNgramSize - 1> dead_{};
};

class NgramHasher {
 public:
  // Builds the hasher of layer `layer_id` (InvalidArgument if not in config.layer_ids). The
  // token map is config.token_map (loaded through env) or the identity of
  // config.compressed_vocab_size; pad_id and dead_token_ids must be inside it.
  static Result<NgramHasher> Create(Env* env, const EngramConfig& config, int64_t layer_id);
  // The same with an already loaded map (shared between the layers' hashers); map null means
  // the identity of config.compressed_vocab_size.
  static Result<NgramHasher> Create(const EngramConfig& config, int64_t layer_id,
                                    std::shared_ptr<const TokenMap> map);

  const EngramConfig& config() const { return config_; }
  int64_t layer_id() const { return layer_id_; }
  int max_ngram_size() const { return config_.max_ngram_size; }
  int heads_per_ngram() const { return config_.n_head_per_ngram; }
  int num_columns() const { return config_.num_columns(); }
  int history_size() const { return config_.max_ngram_size - 1; }
  const std::vector<int64_t>& multipliers() const { return multipliers_; }
  // Per column: table size (prime) and row offset in the layer's stacked table.
  const std::vector<int64_t>& table_sizes() const { return primes_; }
  const std::vector<int64_t>& offsets() const { return offsets_; }
  // Rows of the layer's stacked table: the sum of its primes.
  int64_t total_rows() const { return total_rows_; }
  int64_t compressed_pad_id() const { return pad_; }
  int64_t raw_vocab_size() const { return raw_vocab_; }
  int64_t compressed_vocab_size() const { return compressed_vocab_; }

  // Compresses n raw ids into out (may alias raw). When dead_out is not null it receives 1
  // for ids in dead_token_ids, else 0 (or'ed into dead_in[i] when dead_in is not null).
  Status Compress(const int64_t* raw, size_t n, int64_t* out, const uint8_t* dead_in,
                  uint8_t* dead_out) const;

  // The core: hashes n compressed tokens that follow `history`; dead may be null (none dead).
  // Writes n * num_columns() values to out, position-major; add_offsets gives row ids.
  void HashCompressed(const NgramHistory& history, const int64_t* tokens, const uint8_t* dead,
                      size_t n, bool add_offsets, int64_t* out) const;

  // [batch, seq_len] raw ids (row-major), each row its own sequence (history all pad) ->
  // out [batch, seq_len, num_columns]. dead_mask: null or batch * seq_len bytes, non-zero =
  // dead. On error nothing useful is in out.
  Status HashBatch(const int64_t* raw, size_t batch, size_t seq_len, const uint8_t* dead_mask,
                   bool add_offsets, int64_t* out) const;

  // Varlen batch: request r owns raw[cu_seqlens[r] .. cu_seqlens[r+1]) (cu_seqlens has
  // num_requests + 1 non-decreasing entries, the first 0). histories: null (every request
  // starts fresh) or num_requests pointers, a null entry meaning a fresh history. out gets
  // cu_seqlens[num_requests] * num_columns values. With commit, each request's tokens are then
  // appended to its history; all ids are checked before anything is hashed or committed, so on
  // error no history changes. REQUIRES: the non-null histories are distinct when commit.
  Status HashVarlen(const int64_t* raw, const int64_t* cu_seqlens, size_t num_requests,
                    NgramHistory* const* histories, const uint8_t* dead_mask, bool add_offsets,
                    bool commit, int64_t* out) const;

  // Appends n raw tokens (the accepted prefix) to a history. dead_mask may be null.
  Status Commit(NgramHistory* history, const int64_t* raw, const uint8_t* dead_mask,
                size_t n) const;

 private:
  struct Scratch;  // buffers reused across the requests of one call

  NgramHasher() = default;
  void HashWithScratch(const NgramHistory& history, const int64_t* tokens, const uint8_t* dead,
                       size_t n, bool add_offsets, int64_t* out, Scratch* scratch) const;
  Status CheckHistory(const NgramHistory& history) const;
  bool IsDeadId(int64_t raw) const;
  template <bool kDead>
  void HashLoop(const int64_t* ext, const uint8_t* dist, size_t n, bool add_offsets,
                int64_t* out) const;

  // Constant after Create.
  EngramConfig config_;
  int64_t layer_id_ = 0;
  std::shared_ptr<const TokenMap> map_;  // null: identity
  const int64_t* map_table_ = nullptr;   // map_->table().data(), or null
  int64_t raw_vocab_ = 0;
  int64_t compressed_vocab_ = 0;
  int64_t pad_ = 0;                // compressed pad id
  std::vector<int64_t> dead_ids_;  // sorted raw ids
  std::vector<int64_t> multipliers_;
  std::vector<int64_t> primes_;
  std::vector<int64_t> offsets_;
  std::vector<int64_t> zero_offsets_;  // num_columns() zeros: "offsets" without add_offsets
  std::vector<Int64Modulus> moduli_;
  int64_t total_rows_ = 0;
};

}  // namespace engram::model
