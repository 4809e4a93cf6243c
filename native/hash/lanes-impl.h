/*
 * One width of the multi-buffer sha-256 (sha256-lanes.c includes this file
 * once per width). Before including it, define LANES (messages hashed side
 * by side), LANES_TARGET (the instruction set the functions are compiled
 * for) and LANES_NAME(x) (the width's suffix on each function's name).
 *
 * GCC's generic vectors carry one 32-bit word of each lane; compiled for
 * AVX2 (8 lanes) or AVX-512 (16 lanes) each operation below is one
 * instruction over all lanes.
 */
typedef uint32_t LANES_NAME(vec) __attribute__((vector_size(LANES * 4)));
#define VEC LANES_NAME(vec)

/* One 64-byte block of each lane into the lanes' states. */
__attribute__((target(LANES_TARGET)))
static void LANES_NAME(compress) (VEC state[8], const uint8_t *const block[LANES]) {
  VEC w[16];
  for (int t = 0; t < 16; t++) {
    for (int lane = 0; lane < LANES; lane++) {
      uint32_t word;
      memcpy(&word, block[lane] + 4 * t, 4);
      w[t][lane] = __builtin_bswap32(word);
    }
  }
  VEC a = state[0], b = state[1], c = state[2], d = state[3];
  VEC e = state[4], f = state[5], g = state[6], h = state[7];
  for (int t = 0; t < 64; t++) {
    if (t >= 16) {
      VEC w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
      VEC s0 = ROR(w15, 7) ^ ROR(w15, 18) ^ (w15 >> 3);
      VEC s1 = ROR(w2, 17) ^ ROR(w2, 19) ^ (w2 >> 10);
      w[t & 15] += s0 + w[(t - 7) & 15] + s1;
    }
    VEC t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t & 15];
    VEC t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  state[0] += a; state[1] += b; state[2] += c; state[3] += d;
  state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

/* True when no working lane has begun its padding: OpenSSL can go on from each. */
static int LANES_NAME(all_in_message) (const lane_t lane[LANES]) {
  for (int l = 0; l < LANES; l++) {
    if (lane[l].message != NULL && lane[l].done > lane[l].full) return 0;
  }
  return 1;
}

/*
 * Hash `count` messages, LANES at a time: a lane that finishes its message
 * takes the next. Once no message is left to take and at most
 * HAND_OFF_LANES lanes still work, each of those finishes on OpenSSL from
 * its state (a lane hashing alone costs as much as all of them).
 */
__attribute__((target(LANES_TARGET)))
static void LANES_NAME(hash) (const message_t *messages, size_t count, uint8_t *digests) {
  lane_t lane[LANES];
  VEC state[8];
  size_t next = 0;
  int working = 0;
  for (int l = 0; l < LANES; l++) {
    if (next < count) { lane_start(&lane[l], next, &messages[next]); next++; working++; }
    else lane[l].message = NULL;
    for (int i = 0; i < 8; i++) state[i][l] = IV[i];
  }
  while (working > 0) {
    if (next == count && working <= HAND_OFF_LANES && LANES_NAME(all_in_message)(lane)) {
      for (int l = 0; l < LANES; l++) {
        if (lane[l].message == NULL) continue;
        uint32_t h[8];
        for (int i = 0; i < 8; i++) h[i] = state[i][l];
        lane_finish_openssl(&lane[l], h, digests);
      }
      return;
    }
    const uint8_t *block[LANES];
    for (int l = 0; l < LANES; l++) block[l] = lane_block(&lane[l]);
    LANES_NAME(compress)(state, block);
    for (int l = 0; l < LANES; l++) {
      if (lane[l].message == NULL || !lane_step(&lane[l])) continue;
      uint32_t h[8];
      for (int i = 0; i < 8; i++) { h[i] = state[i][l]; state[i][l] = IV[i]; }
      digest_out(h, digests + 32 * lane[l].index);
      if (next < count) { lane_start(&lane[l], next, &messages[next]); next++; }
      else { lane[l].message = NULL; working--; }
    }
  }
}

#undef VEC
