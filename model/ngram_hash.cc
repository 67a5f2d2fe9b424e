// N-gram multi-head hashing (see ngram_hash.h for the exact definition).
#include "model/ngram_hash.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "model/numpy_rng.h"

namespace engram::model {
namespace {

constexpr int64_t kLayerSeedPrime = 10007;  // the reference's PRIME_1

uint64_t MulMod(uint64_t a, uint64_t b, uint64_t n) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % n);
}

uint64_t PowMod(uint64_t base, uint64_t exp, uint64_t n) {
  uint64_t result = 1;
  base %= n;
  for (; exp > 0; exp >>= 1) {
    if (exp & 1) result = MulMod(result, base, n);
    base = MulMod(base, base, n);
  }
  return result;
}

// The smallest prime > start that `taken` does not hold.
Result<int64_t> NextFreePrime(int64_t start, const std::set<int64_t>& taken) {
  for (uint64_t candidate = static_cast<uint64_t>(start) + 1;; ++candidate) {
    if (candidate > static_cast<uint64_t>(INT64_MAX)) {
      return Status::InvalidArgument("no free prime above " + std::to_string(start) +
                                     " fits in int64 (engram_vocab_size too large)");
    }
    const auto p = static_cast<int64_t>(candidate);
    if (IsPrime64(candidate) && taken.count(p) == 0) return p;
  }
}

// numpy's _int_to_uint32_array of a non-negative integer up to 128 bits.
std::vector<uint32_t> EntropyWords128(unsigned __int128 seed) {
  std::vector<uint32_t> words;
  if (seed == 0) words.push_back(0);
  for (; seed > 0; seed >>= 32) words.push_back(static_cast<uint32_t>(seed));
  return words;
}

}  // namespace

bool IsPrime64(uint64_t n) {
  static constexpr uint64_t kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return false;
  for (uint64_t p : kBases) {
    if (n % p == 0) return n == p;
  }
  uint64_t d = n - 1;
  int s = 0;
  for (; (d & 1) == 0; d >>= 1) ++s;
  for (uint64_t a : kBases) {
    uint64_t x = PowMod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < s && composite; ++r) {
      x = MulMod(x, x, n);
      if (x == n - 1) composite = false;
    }
    if (composite) return false;
  }
  return true;
}

Result<std::vector<std::vector<int64_t>>> ComputeTablePrimes(const EngramConfig& config) {
  ENGRAM_RETURN_IF_ERROR(ValidateEngramConfig(config));
  std::set<int64_t> taken;
  std::vector<std::vector<int64_t>> primes;
  for (size_t l = 0; l < config.layer_ids.size(); ++l) {
    std::vector<int64_t> layer;
    for (int n = 2; n <= config.max_ngram_size; ++n) {
      int64_t start = config.engram_vocab_size[n - 2] - 1;
      for (int j = 0; j < config.n_head_per_ngram; ++j) {
        ENGRAM_ASSIGN_OR_RETURN(int64_t p, NextFreePrime(start, taken));
        taken.insert(p);
        layer.push_back(p);
        start = p;
      }
    }
    primes.push_back(std::move(layer));
  }
  return primes;
}

Result<std::vector<int64_t>> ComputeMultipliers(const EngramConfig& config,
                                                int64_t compressed_vocab_size, int64_t layer_id) {
  if (compressed_vocab_size < 1 || config.seed < 0 || layer_id < 0) {
    return Status::InvalidArgument(
        "multipliers need a compressed vocab size >= 1 and a "
        "non-negative seed and layer id");
  }
  const unsigned __int128 seed =
      static_cast<unsigned __int128>(config.seed) +
      static_cast<unsigned __int128>(kLayerSeedPrime) * static_cast<unsigned __int128>(layer_id);
  const int64_t bound = std::max<int64_t>(1, (INT64_MAX / compressed_vocab_size) / 2);
  Pcg64 gen{SeedSequence(EntropyWords128(seed))};
  ENGRAM_ASSIGN_OR_RETURN(
      std::vector<int64_t> r,
      IntegersInt64(&gen, 0, bound, static_cast<size_t>(config.max_ngram_size)));
  for (int64_t& v : r) v = v * 2 + 1;  // < 2^63: r < bound <= 2^62
  return r;
}

Int64Modulus::Int64Modulus(int64_t p) : p_(static_cast<uint64_t>(p)) {
  // ceil(2^128 / p) = floor((2^128 - 1) / p) + 1, which wraps to 0 for p == 1 (then every
  // remainder comes out 0, which is right).
  m_ = ~static_cast<unsigned __int128>(0) / p_ + 1;
  two64_mod_p_ = static_cast<uint64_t>((static_cast<unsigned __int128>(1) << 64) % p_);
}

NgramHistory::NgramHistory(const NgramHasher& hasher) { Reset(hasher); }

void NgramHistory::Reset(const NgramHasher& hasher) {
  size_ = hasher.history_size();
  tokens_.fill(hasher.compressed_pad_id());
  dead_.fill(0);
}

void NgramHistory::AppendCompressed(const int64_t* tokens, const uint8_t* dead, size_t n) {
  const size_t h = static_cast<size_t>(size_);
  if (n == 0) return;
  if (n >= h) {
    std::memcpy(tokens_.data(), tokens + (n - h), h * sizeof(int64_t));
    for (size_t i = 0; i < h; ++i) dead_[i] = dead ? (dead[n - h + i] != 0) : 0;
    return;
  }
  std::memmove(tokens_.data(), tokens_.data() + n, (h - n) * sizeof(int64_t));
  std::memmove(dead_.data(), dead_.data() + n, h - n);
  std::memcpy(tokens_.data() + (h - n), tokens, n * sizeof(int64_t));
  for (size_t i = 0; i < n; ++i) dead_[h - n + i] = dead ? (dead[i] != 0) : 0;
}

Result<NgramHasher> NgramHasher::Create(Env* env, const EngramConfig& config, int64_t layer_id) {
  std::shared_ptr<const TokenMap> map;
  if (!config.token_map.empty()) {
    Result<TokenMap> loaded = TokenMap::LoadNpy(env, config.token_map);
    if (!loaded.ok()) return loaded.status();
    map = std::make_shared<const TokenMap>(std::move(loaded).value());
  }
  return Create(config, layer_id, std::move(map));
}

Result<NgramHasher> NgramHasher::Create(const EngramConfig& config, int64_t layer_id,
                                        std::shared_ptr<const TokenMap> map) {
  ENGRAM_RETURN_IF_ERROR(ValidateEngramConfig(config));
  const auto layer_it = std::find(config.layer_ids.begin(), config.layer_ids.end(), layer_id);
  if (layer_it == config.layer_ids.end()) {
    std::string ids;
    for (int64_t id : config.layer_ids) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    return Status::InvalidArgument("layer " + std::to_string(layer_id) +
                                   " is not an Engram layer of the config (layer_ids [" + ids +
                                   "])");
  }
  if (map == nullptr && config.compressed_vocab_size <= 0) {
    return Status::InvalidArgument("no token map loaded and no compressed_vocab_size");
  }
  NgramHasher h;
  h.config_ = config;
  h.layer_id_ = layer_id;
  h.map_ = std::move(map);
  h.map_table_ = h.map_ ? h.map_->table().data() : nullptr;
  h.raw_vocab_ = h.map_ ? h.map_->raw_vocab_size() : config.compressed_vocab_size;
  h.compressed_vocab_ = h.map_ ? h.map_->compressed_vocab_size() : config.compressed_vocab_size;
  if (h.raw_vocab_ < 1 || h.compressed_vocab_ < 1) {
    return Status::InvalidArgument("the token map is empty");
  }
  for (int64_t id : config.dead_token_ids) {
    if (id >= h.raw_vocab_) {
      return Status::InvalidArgument("dead token id " + std::to_string(id) +
                                     " is outside the token map (" + std::to_string(h.raw_vocab_) +
                                     " raw ids)");
    }
  }
  h.dead_ids_ = config.dead_token_ids;
  std::sort(h.dead_ids_.begin(), h.dead_ids_.end());
  if (config.pad_id >= h.raw_vocab_) {
    return Status::InvalidArgument("pad_id " + std::to_string(config.pad_id) +
                                   " is outside the token map (" + std::to_string(h.raw_vocab_) +
                                   " raw ids)");
  }
  h.pad_ = h.map_table_ ? h.map_table_[config.pad_id] : config.pad_id;

  ENGRAM_ASSIGN_OR_RETURN(h.multipliers_,
                          ComputeMultipliers(config, h.compressed_vocab_, layer_id));
  ENGRAM_ASSIGN_OR_RETURN(auto all_primes, ComputeTablePrimes(config));
  h.primes_ = std::move(all_primes[layer_it - config.layer_ids.begin()]);
  int64_t total = 0;
  for (int64_t p : h.primes_) {
    h.offsets_.push_back(total);
    if (__builtin_add_overflow(total, p, &total)) {
      return Status::InvalidArgument("layer " + std::to_string(layer_id) +
                                     ": the table sizes add up past INT64_MAX rows");
    }
    h.moduli_.emplace_back(p);
  }
  h.total_rows_ = total;
  h.zero_offsets_.assign(h.primes_.size(), 0);
  return h;
}

bool NgramHasher::IsDeadId(int64_t raw) const {
  return std::binary_search(dead_ids_.begin(), dead_ids_.end(), raw);
}

Status NgramHasher::Compress(const int64_t* raw, size_t n, int64_t* out, const uint8_t* dead_in,
                             uint8_t* dead_out) const {
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = raw[i];
    if (id >= raw_vocab_) {
      return Status::InvalidArgument("token id " + std::to_string(id) + " at position " +
                                     std::to_string(i) + " is outside the token map (" +
                                     std::to_string(raw_vocab_) + " raw ids)");
    }
    if (dead_out != nullptr) {
      const bool dead = (dead_in != nullptr && dead_in[i] != 0) ||
                        (!dead_ids_.empty() && id >= 0 && IsDeadId(id));
      dead_out[i] = dead ? 1 : 0;
    }
    // A negative id passes through uncompressed, as in the reference.
    out[i] = (id >= 0 && map_table_ != nullptr) ? map_table_[id] : id;
  }
  return Status::OK();
}

template <bool kDead>
void NgramHasher::HashLoop(const int64_t* ext, const uint8_t* dist, size_t n, bool add_offsets,
                           int64_t* out) const {
  const int big_n = config_.max_ngram_size;
  const int heads = config_.n_head_per_ngram;
  const int cols = num_columns();
  const int hist = big_n - 1;
  const uint64_t pad = static_cast<uint64_t>(pad_);
  const int64_t* mult = multipliers_.data();
  const Int64Modulus* mod = moduli_.data();
  const int64_t* off = add_offsets ? offsets_.data() : zero_offsets_.data();
  for (size_t t = 0; t < n; ++t) {
    const int64_t* s = ext + hist + t;  // s[-k] is component k
    const int d = kDead ? dist[hist + t] : big_n;
    uint64_t mix =
        (kDead && d == 0 ? pad : static_cast<uint64_t>(s[0])) * static_cast<uint64_t>(mult[0]);
    int64_t* o = out + t * static_cast<size_t>(cols);
    for (int k = 1; k < big_n; ++k) {
      const uint64_t v = (kDead && k >= d) ? pad : static_cast<uint64_t>(s[-k]);
      mix ^= v * static_cast<uint64_t>(mult[k]);
      const int base = (k - 1) * heads;
      for (int j = 0; j < heads; ++j) {
        o[base + j] = mod[base + j].Mod(static_cast<int64_t>(mix)) + off[base + j];
      }
    }
  }
}

struct NgramHasher::Scratch {
  std::vector<int64_t> ext;   // history, then the tokens
  std::vector<uint8_t> dist;  // per ext position: lookback to the nearest dead token, <= N
};

void NgramHasher::HashWithScratch(const NgramHistory& history, const int64_t* tokens,
                                  const uint8_t* dead, size_t n, bool add_offsets, int64_t* out,
                                  Scratch* scratch) const {
  const size_t hist = static_cast<size_t>(history_size());
  std::vector<int64_t>& ext = scratch->ext;
  ext.resize(hist + n);
  bool any_dead = false;
  for (size_t i = 0; i < hist; ++i) {
    ext[i] = history.token(static_cast<int>(i));
    any_dead |= history.dead(static_cast<int>(i));
  }
  if (n > 0) std::memcpy(ext.data() + hist, tokens, n * sizeof(int64_t));
  for (size_t i = 0; dead != nullptr && i < n && !any_dead; ++i) any_dead = dead[i] != 0;
  if (!any_dead) return HashLoop<false>(ext.data(), nullptr, n, add_offsets, out);
  const int big_n = max_ngram_size();
  std::vector<uint8_t>& dist = scratch->dist;
  dist.resize(hist + n);
  int d = big_n;  // nothing before the history is dead
  for (size_t i = 0; i < hist + n; ++i) {
    const bool is_dead =
        i < hist ? history.dead(static_cast<int>(i)) : (dead != nullptr && dead[i - hist] != 0);
    d = is_dead ? 0 : std::min(d + 1, big_n);
    dist[i] = static_cast<uint8_t>(d);
  }
  HashLoop<true>(ext.data(), dist.data(), n, add_offsets, out);
}

void NgramHasher::HashCompressed(const NgramHistory& history, const int64_t* tokens,
                                 const uint8_t* dead, size_t n, bool add_offsets,
                                 int64_t* out) const {
  Scratch scratch;
  HashWithScratch(history, tokens, dead, n, add_offsets, out, &scratch);
}

Status NgramHasher::CheckHistory(const NgramHistory& history) const {
  if (history.size() == history_size()) return Status::OK();
  return Status::InvalidArgument("a request history of " + std::to_string(history.size()) +
                                 " tokens does not fit max_ngram_size " +
                                 std::to_string(max_ngram_size()) + " (needs " +
                                 std::to_string(history_size()) + ")");
}

Status NgramHasher::HashBatch(const int64_t* raw, size_t batch, size_t seq_len,
                              const uint8_t* dead_mask, bool add_offsets, int64_t* out) const {
  const NgramHistory fresh(*this);
  std::vector<int64_t> tokens(seq_len);
  std::vector<uint8_t> dead(seq_len);
  Scratch scratch;
  const size_t cols = static_cast<size_t>(num_columns());
  for (size_t b = 0; b < batch; ++b) {
    const size_t base = b * seq_len;
    Status s = Compress(raw + base, seq_len, tokens.data(), dead_mask ? dead_mask + base : nullptr,
                        dead.data());
    if (!s.ok()) return s.WithContext("row " + std::to_string(b));
    HashWithScratch(fresh, tokens.data(), dead.data(), seq_len, add_offsets, out + base * cols,
                    &scratch);
  }
  return Status::OK();
}

Status NgramHasher::HashVarlen(const int64_t* raw, const int64_t* cu_seqlens, size_t num_requests,
                               NgramHistory* const* histories, const uint8_t* dead_mask,
                               bool add_offsets, bool commit, int64_t* out) const {
  if (cu_seqlens == nullptr || cu_seqlens[0] != 0) {
    return Status::InvalidArgument("cu_seqlens must start with 0");
  }
  for (size_t r = 0; r < num_requests; ++r) {
    if (cu_seqlens[r + 1] < cu_seqlens[r]) {
      return Status::InvalidArgument("cu_seqlens decreases at request " + std::to_string(r));
    }
    if (histories != nullptr && histories[r] != nullptr) {
      Status s = CheckHistory(*histories[r]);
      if (!s.ok()) return s.WithContext("request " + std::to_string(r));
    }
  }
  const size_t total = static_cast<size_t>(cu_seqlens[num_requests]);
  std::vector<int64_t> tokens(total);
  std::vector<uint8_t> dead(total);
  ENGRAM_RETURN_IF_ERROR(Compress(raw, total, tokens.data(), dead_mask, dead.data()));
  const NgramHistory fresh(*this);
  Scratch scratch;
  const size_t cols = static_cast<size_t>(num_columns());
  for (size_t r = 0; r < num_requests; ++r) {
    const size_t begin = static_cast<size_t>(cu_seqlens[r]);
    const size_t len = static_cast<size_t>(cu_seqlens[r + 1]) - begin;
    const NgramHistory* h =
        (histories != nullptr && histories[r] != nullptr) ? histories[r] : &fresh;
    HashWithScratch(*h, tokens.data() + begin, dead.data() + begin, len, add_offsets,
                    out + begin * cols, &scratch);
  }
  if (commit && histories != nullptr) {
    for (size_t r = 0; r < num_requests; ++r) {
      if (histories[r] == nullptr) continue;
      const size_t begin = static_cast<size_t>(cu_seqlens[r]);
      histories[r]->AppendCompressed(tokens.data() + begin, dead.data() + begin,
                                     static_cast<size_t>(cu_seqlens[r + 1]) - begin);
    }
  }
  return Status::OK();
}

Status NgramHasher::Commit(NgramHistory* history, const int64_t* raw, const uint8_t* dead_mask,
                           size_t n) const {
  ENGRAM_RETURN_IF_ERROR(CheckHistory(*history));
  std::vector<int64_t> tokens(n);
  std::vector<uint8_t> dead(n);
  ENGRAM_RETURN_IF_ERROR(Compress(raw, n, tokens.data(), dead_mask, dead.data()));
  history->AppendCompressed(tokens.data(), dead.data(), n);
  return Status::OK();
}

}  // namespace engram::model
