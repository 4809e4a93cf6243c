/*
 * Reads from pack records (records.c): the places a read's bytes are at, read
 * and checked as the block store does, and the places kept per open file.
 */
#ifndef SHOAL_RECORDS_H
#define SHOAL_RECORDS_H
#include <stdint.h>
#include <stddef.h>

/* Most record places one read may be answered with (a 1 MiB request over
 * leaves of at least 64 KiB, or fewer: JavaScript answers with bytes then). */
#define FUSE3_MAX_PLACES 32
/* Longest multihash a place names. */
#define FUSE3_MAX_MULTIHASH 64

/* Where part of a read's answer is: a pack record, read and checked here. */
typedef struct {
  int32_t fd;
  /* the record: its offset in the pack file and its length */
  int64_t record_offset;
  uint32_t record_length;
  /* the bytes taken: from this offset of the record, this many, to this offset of the answer */
  uint32_t from;
  uint32_t length;
  uint32_t to;
  /* the block's multihash, which the record must carry */
  uint32_t multihash_length;
  uint8_t multihash[FUSE3_MAX_MULTIHASH];
} fuse3_place_t;

/* What a mount's reads from pack records did since it was mounted (JavaScript reads them for the node's metrics). */
typedef struct {
  /* records read from disk and checked good, and the block bytes they held */
  uint64_t records;
  uint64_t bytes;
  /* records that failed a check (their length, multihash or crc32c): never served */
  uint64_t refused;
} fuse3_read_counts_t;

/* Set up the shared slots, the kept places and the crc32c: once, before any read. */
void records_init (void);

/*
 * Read the places' records, check each (length field, multihash, crc32c)
 * and copy each place's range into `buf` of `len` bytes. `*scratch` is the
 * calling thread's buffer for a record no shared slot can take (grown as
 * needed). The records read from disk are counted in `counts`. Returns the
 * answer's length, or -1 when a place cannot be served.
 */
int read_places (const fuse3_place_t *places, uint32_t n, char *buf, size_t len, char **scratch, size_t *scratch_cap, fuse3_read_counts_t *counts);

/* The places of the file's bytes [off, off + len) within `n` places of the bytes from `start`, into `out` (may be `in`): their count. */
uint32_t clip_places (const fuse3_place_t *in, uint32_t n, int64_t start, int64_t off, size_t len, fuse3_place_t *out);

/*
 * The kept places of [off, off + len) of handle `fh` of `mount` into `out`:
 * their count, 0 unless all are kept. A request just after the handle's ask
 * in flight waits for that ask's answer first (while the handle's last
 * answer held places; at most 2 s). On 0 the caller asks
 * JavaScript and then calls `asked` with `*token` (nonzero when this ask is
 * the handle's ask in flight, which others wait for).
 */
uint32_t recall_or_ask (void *mount, uint64_t fh, int64_t off, size_t len, fuse3_place_t *out, uint64_t *token);

/* JavaScript answered the ask of `token` (0: an unmarked ask) with `n` places of the bytes from `start`: keep them for the handle and wake those waiting. */
void asked (void *mount, uint64_t fh, uint64_t token, int64_t start, const fuse3_place_t *places, uint32_t n);

/* Drop what is kept for handle `fh` of `mount` (released, or a place failed). */
void forget_places (void *mount, uint64_t fh);

/* Drop everything kept for `mount` (its loop ended). */
void forget_mount_places (void *mount);

#endif
