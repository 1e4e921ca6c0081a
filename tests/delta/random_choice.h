// Seeded random choices for the delta engine's data generators (the oracle
// matrix's batches, TPC-H's): the same seed gives the same batches.
#pragma once

#include <random>
#include <vector>

namespace trickle::delta::testing {

// Uniform in [lo, hi].
inline int Uniform(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}
inline bool Chance(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }
template <typename T>
const T& Pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[Uniform(rng, 0, static_cast<int>(v.size()) - 1)];
}

}  // namespace trickle::delta::testing
