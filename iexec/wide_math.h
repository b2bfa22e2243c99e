// 64x64-bit products and their quotients without `__int128`, which 32-bit ARM (armhf) lacks:
// the PoCo consensus test and the ledger's decimal amounts need them. Portable code, used on
// every target, and tested against __int128 where the compiler has it.
#pragma once

#include <cstdint>

namespace edgeflow::iexec {

struct U128 {
  uint64_t hi = 0, lo = 0;
  bool operator<(const U128& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
  bool operator>(const U128& o) const { return o < *this; }
};

// a * b, exactly.
inline U128 mul_u64(uint64_t a, uint64_t b) {
  const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  U128 r;
  r.lo = (mid << 32) | (p00 & 0xffffffffu);
  r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  return r;
}

// floor(a * b / c) for c > 0 when the quotient fits 64 bits (as when a < c); shift and
// subtract, one bit at a time.
inline uint64_t mul_div_u64(uint64_t a, uint64_t b, uint64_t c) {
  U128 n = mul_u64(a, b);
  uint64_t q = 0, rem = 0;
  for (int i = 127; i >= 0; --i) {
    const uint64_t bit = i >= 64 ? (n.hi >> (i - 64)) & 1 : (n.lo >> i) & 1;
    const bool carry = rem >> 63;  // rem * 2 would pass 64 bits: it is then above c
    rem = (rem << 1) | bit;
    if (carry || rem >= c) {
      rem -= c;
      if (i < 64) q |= uint64_t{1} << i;
    }
  }
  return q;
}

}  // namespace edgeflow::iexec
