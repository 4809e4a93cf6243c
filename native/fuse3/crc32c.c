/*
 * crc32c (Castagnoli), reflected, as @node-rs/crc32's crc32c(bytes, crc):
 * what a pack record carries over its length field and its bytes
 * (node/blocks/pack-record.ts). With SSE 4.2, the crc32 instruction in three
 * interleaved streams; a table otherwise.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "crc32c.h"

static uint32_t crc32c_table[256];

static void crc32c_init_table (void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc32c_table[i] = c;
  }
}

static uint32_t crc32c_soft (uint32_t crc, const uint8_t *p, size_t n) {
  uint32_t c = ~crc;
  while (n--) c = crc32c_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>
/*
 * Hardware crc32c in three independent streams: the crc32 instruction has a
 * latency of three cycles and a throughput of one, so one stream runs at a
 * third of the instruction's speed. Three blocks of equal length are summed
 * at once and their crcs combined by shifting each over the zeros that follow
 * it (the method of zlib's crc32_combine, with the shift for one block length
 * kept in four byte tables).
 */
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t crc32c_long[4][256];
static uint32_t crc32c_short[4][256];

static uint32_t gf2_matrix_times (const uint32_t *mat, uint32_t vec) {
  uint32_t sum = 0;
  while (vec) { if (vec & 1) sum ^= *mat; vec >>= 1; mat++; }
  return sum;
}

static void gf2_matrix_square (uint32_t *square, const uint32_t *mat) {
  for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

/* The operator that appends `len` zero bytes to a crc (`len` a power of two). */
static void crc32c_zeros_op (uint32_t *even, size_t len) {
  uint32_t odd[32];
  odd[0] = 0x82F63B78u;
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) { odd[n] = row; row <<= 1; }
  gf2_matrix_square(even, odd); /* two zero bits */
  gf2_matrix_square(odd, even); /* four */
  do {
    gf2_matrix_square(even, odd);
    len >>= 1;
    if (len == 0) return;
    gf2_matrix_square(odd, even);
    len >>= 1;
  } while (len);
  for (int n = 0; n < 32; n++) even[n] = odd[n];
}

static void crc32c_zeros (uint32_t zeros[][256], size_t len) {
  uint32_t op[32];
  crc32c_zeros_op(op, len);
  for (uint32_t n = 0; n < 256; n++) {
    zeros[0][n] = gf2_matrix_times(op, n);
    zeros[1][n] = gf2_matrix_times(op, n << 8);
    zeros[2][n] = gf2_matrix_times(op, n << 16);
    zeros[3][n] = gf2_matrix_times(op, n << 24);
  }
}

static inline uint32_t crc32c_shift (uint32_t zeros[][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw (uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c0 = (uint32_t) ~crc;
  while (n > 0 && ((uintptr_t) p & 7) != 0) { c0 = _mm_crc32_u8((uint32_t) c0, *p++); n--; }
  const size_t blocks[2] = { CRC_LONG, CRC_SHORT };
  for (int b = 0; b < 2; b++) {
    size_t len = blocks[b];
    while (n >= len * 3) {
      uint64_t c1 = 0, c2 = 0;
      const uint8_t *end = p + len;
      do {
        uint64_t v0, v1, v2;
        memcpy(&v0, p, 8); memcpy(&v1, p + len, 8); memcpy(&v2, p + 2 * len, 8);
        c0 = _mm_crc32_u64(c0, v0); c1 = _mm_crc32_u64(c1, v1); c2 = _mm_crc32_u64(c2, v2);
        p += 8;
      } while (p < end);
      uint32_t (*zeros)[256] = b == 0 ? crc32c_long : crc32c_short;
      c0 = crc32c_shift(zeros, (uint32_t) c0) ^ (uint32_t) c1;
      c0 = crc32c_shift(zeros, (uint32_t) c0) ^ (uint32_t) c2;
      p += 2 * len;
      n -= 3 * len;
    }
  }
  while (n >= 8) { uint64_t v; memcpy(&v, p, 8); c0 = _mm_crc32_u64(c0, v); p += 8; n -= 8; }
  while (n--) c0 = _mm_crc32_u8((uint32_t) c0, *p++);
  return ~(uint32_t) c0;
}
static int crc32c_has_hw = 0;
#endif

uint32_t crc32c (uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  if (crc32c_has_hw) return crc32c_hw(crc, p, n);
#endif
  return crc32c_soft(crc, p, n);
}

void crc32c_init (void) {
  crc32c_init_table();
#if defined(__x86_64__)
  __builtin_cpu_init();
  crc32c_has_hw = __builtin_cpu_supports("sse4.2");
  crc32c_zeros(crc32c_long, CRC_LONG);
  crc32c_zeros(crc32c_short, CRC_SHORT);
#endif
}
