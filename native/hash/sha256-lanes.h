/* sha-256 of several messages at once: see sha256-lanes.c. */
#ifndef SHOAL_SHA256_LANES_H
#define SHOAL_SHA256_LANES_H
#include <stddef.h>
#include <stdint.h>

/* One message of a batch: its bytes, read in place. */
typedef struct {
  const uint8_t *data;
  size_t length;
} message_t;

/*
 * The widths this core can hash at, as a bit set: 1 (one message at a time,
 * OpenSSL) always, 8 (AVX2), 16 (AVX-512).
 */
unsigned int sha256_lane_widths (void);

/*
 * Hash `count` messages into `digests` (32 bytes each, in order). `width`:
 * -1 picks what is fastest here, 1, 8 or 16 force one (for tests and
 * benchmarks). Returns 0, -1 for a width this core lacks, -2 when OpenSSL
 * failed.
 */
int sha256_many (const message_t *messages, size_t count, uint8_t *digests, int width);

#endif
