// numpy's SeedSequence, PCG64 and bounded int64 draws (see numpy_rng.h for the sources).
#include "model/numpy_rng.h"

#include <string>

namespace engram::model {
namespace {

// SeedSequence constants (numpy/random/bit_generator.pyx).
constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr int kXShift = 16;

uint32_t HashMix(uint32_t value, uint32_t* hash_const) {
  value ^= *hash_const;
  *hash_const *= kMultA;
  value *= *hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t Mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

uint64_t RotateRight(uint64_t value, unsigned rot) {
  return (value >> rot) | (value << ((-rot) & 63u));
}

// Lemire's nearly-divisionless bounded draw on 32-bit outputs: [0, rng], rng < 0xFFFFFFFF.
uint32_t BoundedLemire32(Pcg64* gen, uint32_t rng) {
  const uint32_t rng_excl = rng + 1;
  uint64_t m = static_cast<uint64_t>(gen->NextUint32()) * rng_excl;
  uint32_t leftover = static_cast<uint32_t>(m);
  if (leftover < rng_excl) {
    const uint32_t threshold = (UINT32_MAX - rng) % rng_excl;
    while (leftover < threshold) {
      m = static_cast<uint64_t>(gen->NextUint32()) * rng_excl;
      leftover = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

// The same on 64-bit outputs: [0, rng], rng < UINT64_MAX.
uint64_t BoundedLemire64(Pcg64* gen, uint64_t rng) {
  const uint64_t rng_excl = rng + 1;
  unsigned __int128 m = static_cast<unsigned __int128>(gen->NextUint64()) * rng_excl;
  uint64_t leftover = static_cast<uint64_t>(m);
  if (leftover < rng_excl) {
    const uint64_t threshold = (UINT64_MAX - rng) % rng_excl;
    while (leftover < threshold) {
      m = static_cast<unsigned __int128>(gen->NextUint64()) * rng_excl;
      leftover = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace

SeedSequence::SeedSequence(const std::vector<uint32_t>& entropy) {
  uint32_t hash_const = kInitA;
  for (int i = 0; i < kPoolSize; ++i) {
    const uint32_t word = static_cast<size_t>(i) < entropy.size() ? entropy[i] : 0;
    pool_[i] = HashMix(word, &hash_const);
  }
  for (int src = 0; src < kPoolSize; ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool_[dst] = Mix(pool_[dst], HashMix(pool_[src], &hash_const));
    }
  }
  for (size_t src = kPoolSize; src < entropy.size(); ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      pool_[dst] = Mix(pool_[dst], HashMix(entropy[src], &hash_const));
    }
  }
}

std::vector<uint32_t> SeedSequence::EntropyWords(uint64_t seed) {
  std::vector<uint32_t> words;
  if (seed == 0) words.push_back(0);
  for (; seed > 0; seed >>= 32) words.push_back(static_cast<uint32_t>(seed));
  return words;
}

std::vector<uint32_t> SeedSequence::GenerateState32(size_t n_words) const {
  std::vector<uint32_t> state(n_words);
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t value = pool_[i % kPoolSize];
    value ^= hash_const;
    hash_const *= kMultB;
    value *= hash_const;
    value ^= value >> kXShift;
    state[i] = value;
  }
  return state;
}

std::vector<uint64_t> SeedSequence::GenerateState64(size_t n_words) const {
  const std::vector<uint32_t> words = GenerateState32(2 * n_words);
  std::vector<uint64_t> state(n_words);
  for (size_t i = 0; i < n_words; ++i) {
    state[i] =
        static_cast<uint64_t>(words[2 * i]) | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
  }
  return state;
}

Pcg64::Pcg64(const SeedSequence& seed_sequence) {
  const std::vector<uint64_t> w = seed_sequence.GenerateState64(4);
  const unsigned __int128 init_state = (static_cast<unsigned __int128>(w[0]) << 64) | w[1];
  const unsigned __int128 init_seq = (static_cast<unsigned __int128>(w[2]) << 64) | w[3];
  // pcg_setseq_128_srandom_r.
  state_ = 0;
  inc_ = (init_seq << 1) | 1;
  Step();
  state_ += init_state;
  Step();
}

uint64_t Pcg64::NextUint64() {
  Step();
  const uint64_t hi = static_cast<uint64_t>(state_ >> 64);
  const uint64_t lo = static_cast<uint64_t>(state_);
  return RotateRight(hi ^ lo, static_cast<unsigned>(state_ >> 122));
}

uint32_t Pcg64::NextUint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uint32_;
  }
  const uint64_t next = NextUint64();
  has_uint32_ = true;
  uint32_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next);
}

void BoundedUint64Fill(Pcg64* gen, uint64_t off, uint64_t rng, size_t n, uint64_t* out) {
  if (rng == 0) {
    for (size_t i = 0; i < n; ++i) out[i] = off;
  } else if (rng == 0xFFFFFFFFULL) {
    for (size_t i = 0; i < n; ++i) out[i] = off + gen->NextUint32();
  } else if (rng < 0xFFFFFFFFULL) {
    for (size_t i = 0; i < n; ++i) {
      out[i] = off + BoundedLemire32(gen, static_cast<uint32_t>(rng));
    }
  } else if (rng == UINT64_MAX) {
    for (size_t i = 0; i < n; ++i) out[i] = off + gen->NextUint64();
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = off + BoundedLemire64(gen, rng);
  }
}

Result<std::vector<int64_t>> IntegersInt64Closed(Pcg64* gen, int64_t low, int64_t high_inclusive,
                                                 size_t n) {
  if (low > high_inclusive) {
    return Status::InvalidArgument("integers: low " + std::to_string(low) + " > high " +
                                   std::to_string(high_inclusive) + " (closed interval)");
  }
  const uint64_t rng = static_cast<uint64_t>(high_inclusive) - static_cast<uint64_t>(low);
  std::vector<uint64_t> raw(n);
  BoundedUint64Fill(gen, static_cast<uint64_t>(low), rng, n, raw.data());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(raw[i]);
  return out;
}

Result<std::vector<int64_t>> IntegersInt64(Pcg64* gen, int64_t low, int64_t high, size_t n) {
  if (low >= high) {
    return Status::InvalidArgument("integers: low " + std::to_string(low) + " >= high " +
                                   std::to_string(high));
  }
  return IntegersInt64Closed(gen, low, high - 1, n);
}

Result<std::vector<int64_t>> DefaultRngIntegers(uint64_t seed, int64_t high, size_t n) {
  Pcg64 gen(seed);
  return IntegersInt64(&gen, 0, high, n);
}

}  // namespace engram::model
