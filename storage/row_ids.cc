#include "storage/row_ids.h"

#include <algorithm>
#include <utility>

namespace engram {

void DedupeIds(const uint64_t* ids, size_t n, std::vector<uint64_t>* unique,
               std::vector<uint32_t>* unique_of) {
  std::vector<std::pair<uint64_t, uint32_t>> sorted(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = {ids[i], static_cast<uint32_t>(i)};
  std::sort(sorted.begin(), sorted.end());
  unique->clear();
  unique_of->resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || sorted[i].first != sorted[i - 1].first) unique->push_back(sorted[i].first);
    (*unique_of)[sorted[i].second] = static_cast<uint32_t>(unique->size() - 1);
  }
}

std::vector<uint64_t> UniqueInOrder(const uint64_t* ids, size_t n) {
  std::vector<uint64_t> unique;
  std::vector<uint32_t> unique_of;
  DedupeIds(ids, n, &unique, &unique_of);
  std::vector<uint8_t> seen(unique.size(), 0);
  std::vector<uint64_t> out;
  out.reserve(unique.size());
  for (size_t i = 0; i < n; ++i) {
    if (!seen[unique_of[i]]) {
      seen[unique_of[i]] = 1;
      out.push_back(ids[i]);
    }
  }
  return out;
}

}  // namespace engram
