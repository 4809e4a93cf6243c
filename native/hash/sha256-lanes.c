/*
 * sha-256 of several messages at once, side by side in vector registers
 * ("multi-buffer" hashing).
 *
 * Why: a core without the SHA extensions hashes one message at ~0.23 GB/s
 * (OpenSSL, AVX2): the rounds of sha-256 depend on each other, so one
 * message keeps the core's vector units mostly idle. A node that receives
 * blocks from peers hashes every byte of them, and on such a core that hash
 * was the largest share of a remote read's CPU (docs/benchmarks.md).
 * Hashing 8 (AVX2) or 16 (AVX-512) messages in the lanes of one register
 * does the same rounds for all of them at once: 4-5 x the bytes per
 * CPU-second here. The same idea is Intel's isa-l_crypto `mb_sha256` and
 * minio's sha256-simd server mode; neither is packaged for Debian, so the
 * code is ours, checked against OpenSSL on every length class of the
 * padding (test/node/blocks/native-hash.test.ts).
 *
 * When: only where it wins. A core with the SHA extensions hashes one
 * message at ~1.7 GB/s, as fast as 16 lanes: OpenSSL hashes each message
 * there. Without them, one or two messages go to OpenSSL too (a lane alone
 * costs as much as all of them), more go to the lanes; once the lanes run
 * dry, the last messages still being hashed finish on OpenSSL from the
 * lanes' state.
 *
 * How: each lane walks its message's whole 64-byte blocks in place, then
 * one or two blocks of its own holding the message's last bytes and the
 * padding. No message is copied.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <cpuid.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include "sha256-lanes.h"

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};
static const uint32_t IV[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
/* at most this many lanes still working (and nothing left to take) finish on OpenSSL */
#define HAND_OFF_LANES 2

/* A message being hashed in a lane. */
typedef struct {
  const message_t *message; /* NULL: the lane is idle */
  size_t index;             /* the message's place in the batch (where its digest goes) */
  size_t full;              /* whole 64-byte blocks of the message, hashed in place */
  size_t done;              /* blocks hashed so far, the padding's included */
  size_t last;              /* blocks in all: full, then 1 or 2 of `tail` */
  uint8_t tail[128];        /* the message's last bytes (< 64), 0x80, zeros, its length in bits */
} lane_t;

static const uint8_t IDLE_BLOCK[64];

static void lane_start (lane_t *lane, size_t index, const message_t *message) {
  size_t rest = message->length % 64;
  uint64_t bits = (uint64_t)message->length * 8;
  lane->message = message;
  lane->index = index;
  lane->full = message->length / 64;
  lane->done = 0;
  size_t tail_blocks = rest + 9 <= 64 ? 1 : 2;
  lane->last = lane->full + tail_blocks;
  memset(lane->tail, 0, sizeof lane->tail);
  if (rest > 0) memcpy(lane->tail, message->data + 64 * lane->full, rest);
  lane->tail[rest] = 0x80;
  for (int i = 0; i < 8; i++) lane->tail[64 * tail_blocks - 1 - i] = (uint8_t)(bits >> (8 * i));
}

/* The lane's next block (a block of zeros for an idle lane, whose state nobody reads). */
static const uint8_t *lane_block (const lane_t *lane) {
  if (lane->message == NULL) return IDLE_BLOCK;
  if (lane->done < lane->full) return lane->message->data + 64 * lane->done;
  return lane->tail + 64 * (lane->done - lane->full);
}

/* Count the block just hashed; true when it was the message's last. */
static int lane_step (lane_t *lane) {
  return ++lane->done == lane->last;
}

static void digest_out (const uint32_t h[8], uint8_t *digest) {
  for (int i = 0; i < 8; i++) {
    digest[4 * i] = (uint8_t)(h[i] >> 24);
    digest[4 * i + 1] = (uint8_t)(h[i] >> 16);
    digest[4 * i + 2] = (uint8_t)(h[i] >> 8);
    digest[4 * i + 3] = (uint8_t)h[i];
  }
}

/* Finish a lane that has not begun its padding on OpenSSL, from state `h`. */
static void lane_finish_openssl (const lane_t *lane, const uint32_t h[8], uint8_t *digests) {
  SHA256_CTX context;
  SHA256_Init(&context);
  uint64_t bits = (uint64_t)lane->done * 64 * 8;
  for (int i = 0; i < 8; i++) context.h[i] = h[i];
  context.Nl = (SHA_LONG)bits;
  context.Nh = (SHA_LONG)(bits >> 32);
  size_t from = 64 * lane->done;
  SHA256_Update(&context, lane->message->data + from, lane->message->length - from);
  SHA256_Final(digests + 32 * lane->index, &context);
}

#define LANES 8
#define LANES_TARGET "avx2"
#define LANES_NAME(x) x##_8
#include "lanes-impl.h"
#undef LANES
#undef LANES_TARGET
#undef LANES_NAME

#define LANES 16
#define LANES_TARGET "avx512f,avx512bw"
#define LANES_NAME(x) x##_16
#include "lanes-impl.h"
#undef LANES
#undef LANES_TARGET
#undef LANES_NAME

/* Does this core have the SHA extensions (CPUID leaf 7, EBX bit 29)? */
static int has_sha_extensions (void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b >> 29) & 1;
}

/* What this core has, asked once: bit 0 one at a time, 8 AVX2, 16 AVX-512, 32 the SHA extensions. */
static unsigned int core_features (void) {
  static volatile unsigned int known = 0;
  unsigned int features = known;
  if (features == 0) {
    __builtin_cpu_init();
    features = 1;
    if (__builtin_cpu_supports("avx2")) features |= 8;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) features |= 16;
    if (has_sha_extensions()) features |= 32;
    /* the same answer from any thread that races here */
    known = features;
  }
  return features;
}

unsigned int sha256_lane_widths (void) {
  return core_features() & (1 | 8 | 16);
}

int sha256_many (const message_t *messages, size_t count, uint8_t *digests, int width) {
  unsigned int features = core_features();
  unsigned int widths = features & (1 | 8 | 16);
  if (width < 0) {
    /* automatic: OpenSSL where the core has the SHA extensions or the batch is one or two messages */
    if ((features & 32) || count <= HAND_OFF_LANES) width = 1;
    else if (count > 8 && (widths & 16)) width = 16;
    else if (widths & 8) width = 8;
    else if (widths & 16) width = 16;
    else width = 1;
  }
  if ((width != 1 && width != 8 && width != 16) || !(widths & (unsigned int)width)) return -1;
  if (width == 16) hash_16(messages, count, digests);
  else if (width == 8) hash_8(messages, count, digests);
  else {
    for (size_t i = 0; i < count; i++) {
      if (SHA256(messages[i].data, messages[i].length, digests + 32 * i) == NULL) return -2;
    }
  }
  return 0;
}
