// numpy_rng: numpy's default random generator reproduced bit for bit, as far as the Engram
// hashing needs it: `numpy.random.default_rng(seed).integers(low, high, size, dtype=int64)`.
//
// The Engram reference draws each layer's hash multipliers with that call, so a table trained
// with it is addressed by exactly these numbers. Three numpy pieces are reproduced (numpy 1.17+,
// checked against numpy 1.24 by tests/model/numpy_rng_test.cc with vectors numpy wrote):
//   - SeedSequence (numpy/random/bit_generator.pyx): the integer seed is split into 32-bit
//     words (lowest first), hashed into a pool of 4 words (hashmix/mix), and generate_state()
//     expands the pool into seed words;
//   - PCG64 (numpy/random/src/pcg64): state = (w0 << 64) | w1 and increment = (w2 << 64) | w3
//     of generate_state(4, uint64), seeded with pcg's srandom (inc = (seq << 1) | 1, step,
//     add the state, step); each 64-bit output steps the 128-bit LCG and returns XSL-RR of the
//     new state; 32-bit outputs use the two halves of one 64-bit output, low half first;
//   - Generator.integers for int64 (numpy/random/src/distributions/distributions.c,
//     random_bounded_uint64_fill with use_masked=False): rng = high - 1 - low; rng == 0 draws
//     nothing; rng < 0xFFFFFFFF uses Lemire's method on 32-bit outputs; rng == 0xFFFFFFFF
//     returns 32-bit outputs as they are; a larger rng uses Lemire's method on 64-bit outputs.
//
// Thread safety: SeedSequence is a value; a Pcg64 is used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "storage/status.h"

namespace engram::model {

// numpy.random.SeedSequence(entropy) with the default pool size (4) and no spawn key.
class SeedSequence {
 public:
  static constexpr int kPoolSize = 4;

  // `entropy` is the seed as 32-bit words, least significant first (numpy's
  // _coerce_to_uint32_array of a non-negative integer: the integer 0 is the single word 0).
  explicit SeedSequence(const std::vector<uint32_t>& entropy);
  // The words of a non-negative integer seed, as numpy splits it.
  static std::vector<uint32_t> EntropyWords(uint64_t seed);

  const std::array<uint32_t, kPoolSize>& pool() const { return pool_; }

  // generate_state(n_words, np.uint32).
  std::vector<uint32_t> GenerateState32(size_t n_words) const;
  // generate_state(n_words, np.uint64): 2 * n_words 32-bit words, paired little-endian.
  std::vector<uint64_t> GenerateState64(size_t n_words) const;

 private:
  std::array<uint32_t, kPoolSize> pool_{};
};

// numpy.random.PCG64 seeded from a SeedSequence.
class Pcg64 {
 public:
  explicit Pcg64(const SeedSequence& seed_sequence);
  // PCG64(seed) for a non-negative integer seed.
  explicit Pcg64(uint64_t seed) : Pcg64(SeedSequence(SeedSequence::EntropyWords(seed))) {}

  uint64_t NextUint64();
  // numpy's next_uint32: the low half of a fresh 64-bit output, then its high half.
  uint32_t NextUint32();

  // The 128-bit state and increment (for tests against numpy's bit_generator.state).
  unsigned __int128 state() const { return state_; }
  unsigned __int128 inc() const { return inc_; }

 private:
  void Step() { state_ = state_ * kMultiplier + inc_; }

  static constexpr unsigned __int128 kMultiplier =
      (static_cast<unsigned __int128>(0x2360ed051fc65da4ULL) << 64) | 0x4385df649fccf645ULL;
  unsigned __int128 state_ = 0;
  unsigned __int128 inc_ = 0;
  bool has_uint32_ = false;
  uint32_t uint32_ = 0;
};

// numpy's random_bounded_uint64_fill(state, off, rng, n, use_masked=false, out): n values
// uniform on the closed interval [off, off + rng] (wrapping), in numpy's draw order.
void BoundedUint64Fill(Pcg64* gen, uint64_t off, uint64_t rng, size_t n, uint64_t* out);

// Generator.integers(low, high, size=n, dtype=np.int64) (endpoint=False) drawn from `gen`.
// InvalidArgument when low >= high.
Result<std::vector<int64_t>> IntegersInt64(Pcg64* gen, int64_t low, int64_t high, size_t n);
// The same with endpoint=True: values on [low, high_inclusive] (reaches INT64_MAX, which is
// numpy's high = 2**63 with endpoint=False).
Result<std::vector<int64_t>> IntegersInt64Closed(Pcg64* gen, int64_t low, int64_t high_inclusive,
                                                 size_t n);

// default_rng(seed).integers(0, high, size=n, dtype=np.int64) in one call.
Result<std::vector<int64_t>> DefaultRngIntegers(uint64_t seed, int64_t high, size_t n);

}  // namespace engram::model
