// Philox 4x32-10 counter-based RNG, bit-for-bit the variant of Triton's `tl.rand(seed, offset)`.
//
// Source: triton/language/random.py (philox_impl, philox, randint4x, uint_to_uniform_float,
// rand) in triton 3.x; the generator itself is Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3" (SC'11). The pure-PyTorch reference of the same stream is kernels/philox.py.
//
// Usable from three compilers: nvcc device code (__CUDA_ARCH__ defined: __umulhi), nvcc host
// code and plain g++ (the CPU extension in kernels/cpp includes this file): every function is
// `__host__ __device__` under nvcc and plain `inline` elsewhere.
//
// Stream definition (what has to match Triton exactly):
//   counter (c0, c1, c2, c3) = (offset & 0xffffffff, offset >> 32, 0, 0)
//   key     (k0, k1)         = (seed & 0xffffffff, seed >> 32)
//   10 rounds of   c0' = mulhi(B, c2) ^ c1 ^ k0     c2' = mulhi(A, c0) ^ c3 ^ k1
//                  c1' = B * c2                     c3' = A * c0          (mod 2^32)
//                  k0 += 0x9E3779B9                 k1 += 0xBB67AE85
//   randint = c0 after the last round (tl.rand uses only the first of the four words)
//   uniform = float(x < 0 ? ~x : x) * 4.6566127342e-10f with x the word bitcast to int32,
//             a float32 in [0, 1) (Triton's uint_to_uniform_float: the scale is the largest
//             float with INT32_MAX * scale < 1 after float rounding).
//   dropout keeps element i when uniform(seed, i) > p (Triton tutorial 04, "low-memory dropout").
//
// Offsets below 2^32 give c1 = 0, which is what Triton computes for int32 offsets too, so the
// stream agrees with kernels written with either offset width.
//
// Cost: one call is 10 rounds of 2 mulhi + 2 mul (40 32-bit integer multiplies). On sm_90 the
// IMAD pipe issues 64 per clock per SM (half the FP32 rate), so at ~1.98 GHz and 132 SMs one
// H100/H200 makes ~0.4e12 calls/s: comparable to streaming 8 bytes/element at 4.8 TB/s. Fused
// dropout is therefore close to integer-bound on Hopper (an estimate from the throughput tables
// in the CUDA C++ Programming Guide, not a measurement). Using all four words of one call would
// be 4x cheaper but would no longer equal tl.rand(seed, offset) element for element.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TD_HOST_DEVICE inline
#endif

namespace td {

// Weyl increments of the key (golden ratio and sqrt(3) - 1, times 2^32) and the round
// multipliers, from triton/language/random.py (uint32 branch of philox_impl).
constexpr uint32_t PHILOX_KEY_A = 0x9E3779B9u;
constexpr uint32_t PHILOX_KEY_B = 0xBB67AE85u;
constexpr uint32_t PHILOX_ROUND_A = 0xD2511F53u;
constexpr uint32_t PHILOX_ROUND_B = 0xCD9E8D57u;
constexpr int PHILOX_N_ROUNDS = 10;
// Largest float32 with INT32_MAX * scale < 1.0 after rounding (Triton's constant, verbatim).
constexpr float PHILOX_UINT_TO_UNIFORM = 4.6566127342e-10f;

// High 32 bits of the 64-bit product a * b.
TD_HOST_DEVICE uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * static_cast<uint64_t>(b)) >> 32);
#endif
}

// First word of Philox4x32-10 for counter (offset_lo, offset_hi, 0, 0) under key = seed:
// Triton's randint(seed, offset).
TD_HOST_DEVICE uint32_t philox_randint(uint64_t seed, uint64_t offset) {
  uint32_t c0 = static_cast<uint32_t>(offset);
  uint32_t c1 = static_cast<uint32_t>(offset >> 32);
  uint32_t c2 = 0u;
  uint32_t c3 = 0u;
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < PHILOX_N_ROUNDS; ++round) {
    const uint32_t old_c0 = c0;
    const uint32_t old_c2 = c2;
    c0 = philox_mulhi(PHILOX_ROUND_B, old_c2) ^ c1 ^ k0;
    c2 = philox_mulhi(PHILOX_ROUND_A, old_c0) ^ c3 ^ k1;
    c1 = PHILOX_ROUND_B * old_c2;  // unsigned: wraps mod 2^32, as tl.mul(sanitize_overflow=False)
    c3 = PHILOX_ROUND_A * old_c0;
    k0 += PHILOX_KEY_A;
    k1 += PHILOX_KEY_B;
  }
  return c0;
}

// Triton's uint_to_uniform_float for 32-bit words: a float32 in [0, 1).
// The int -> float conversion rounds to nearest (cvt.rn.f32.s32 on the GPU, cvtsi2ss on x86),
// and the product is one correctly rounded float multiply on both (no fast-math anywhere).
TD_HOST_DEVICE float philox_uint_to_uniform(uint32_t bits) {
  int32_t x = static_cast<int32_t>(bits);  // bitcast (two's complement)
  x = x < 0 ? ~x : x;
  return static_cast<float>(x) * PHILOX_UINT_TO_UNIFORM;
}

// Triton's tl.rand(seed, offset).
TD_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t offset) {
  return philox_uint_to_uniform(philox_randint(seed, offset));
}

// Keep decision of dropout with drop probability p for the element at `offset` (row-major
// element index): kept iff tl.rand(seed, offset) > p, as in Triton tutorial 04.
TD_HOST_DEVICE bool philox_keep(uint64_t seed, uint64_t offset, float p) {
  return philox_uniform(seed, offset) > p;
}

}  // namespace td
