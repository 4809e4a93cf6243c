/*
 * Reads from pack records, for the libfuse3 binding (fuse3.c).
 *
 * Why: a read of a file this node holds used to go through the event loop
 * twice per request and its bytes through JavaScript: each record read on
 * the thread pool into a new buffer, its crc32c computed on the main thread,
 * then copied into libfuse's buffer. On two cores that main thread was the
 * bound (docs/benchmarks.md, "FUSE"): a FUSE read through the block store ran
 * at ~0.4 x the FUSE ceiling.
 *
 * How: JavaScript may answer a read with the places of its bytes instead of
 * the bytes (fuse3_signal_read_places): for each piece, a pack file's
 * descriptor, the record's offset and length, the range of the record to
 * take and where it goes in the answer, and the block's multihash. The
 * FUSE thread then reads each record whole (into a slot its threads share,
 * below), checks it as the block store does (its length field, its multihash, its crc32c over bytes
 * [0, 4) and [8, end)) and copies the range into libfuse's buffer. A record
 * that fails any check (or cannot be read) is never served: the read is
 * asked of JavaScript again with `slow` set, and answered through the block
 * store's own read path, which re-fetches or rebuilds the block and replaces
 * the bad copy. JavaScript keeps the descriptors open while its handle is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <uv.h>
#include "crc32c.h"
#include "records.h"

static uint32_t le32 (const uint8_t *p) {
  return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/*
 * The last records checked, shared by the FUSE threads: the kernel's 1 MiB
 * requests rarely line up with leaves, so most records are asked for by two
 * requests in a row, and those two are usually in flight at once on two
 * threads. A record is read and checked once: the first thread to need it
 * claims a slot and reads into it; a thread that needs a record being read
 * waits for it rather than reading it again (a read of the same bytes twice
 * was a third of the disk reads of a cold sequential read), but only after
 * reading the records it claimed itself (read_places). A slot is
 * matched by descriptor, offset, length and multihash: a descriptor number
 * reused for another pack could only match a record of the same block.
 */
#define RECORD_SLOTS 8
#define SLOT_EMPTY 0
#define SLOT_LOADING 1
#define SLOT_READY 2
typedef struct {
  int32_t fd;
  int64_t offset;
  uint32_t length;
  uint32_t multihash_length;
  uint8_t multihash[FUSE3_MAX_MULTIHASH];
  char *data;
  size_t cap;
  int state;
  int refs;
  uint64_t used;
} fuse3_record_slot_t;
static fuse3_record_slot_t record_slots[RECORD_SLOTS];
static uint64_t record_clock = 0;
static uv_mutex_t record_slots_mut;
static uv_cond_t record_slots_cond;

static int slot_matches (const fuse3_record_slot_t *slot, const fuse3_place_t *e) {
  return slot->state != SLOT_EMPTY && slot->fd == e->fd && slot->offset == e->record_offset && slot->length == e->record_length &&
    slot->multihash_length == e->multihash_length && memcmp(slot->multihash, e->multihash, e->multihash_length) == 0;
}

/* How read_places takes a place's record. */
#define TAKE_ALONE 0  /* every slot in use: read into the thread's scratch */
#define TAKE_LOAD 1   /* this thread claimed the slot: it reads the record, then settles it */
#define TAKE_SHARED 2 /* another thread's slot, read or being read: waited for (slot_wait), then copied */

/*
 * The slot of place `e`'s record, claimed or joined without waiting, with a
 * reference held (`*how` says which); NULL (TAKE_ALONE) when every slot is
 * in use.
 */
static fuse3_record_slot_t *slot_take (const fuse3_place_t *e, int *how) {
  uv_mutex_lock(&record_slots_mut);
  fuse3_record_slot_t *slot = NULL;
  for (int i = 0; i < RECORD_SLOTS; i++) {
    if (slot_matches(&record_slots[i], e)) { slot = &record_slots[i]; break; }
  }
  if (slot != NULL) {
    slot->refs++;
    slot->used = ++record_clock;
    *how = TAKE_SHARED;
    uv_mutex_unlock(&record_slots_mut);
    return slot;
  }
  for (int i = 0; i < RECORD_SLOTS; i++) {
    fuse3_record_slot_t *s = &record_slots[i];
    if (s->refs == 0 && (slot == NULL || s->used < slot->used)) slot = s;
  }
  *how = slot == NULL ? TAKE_ALONE : TAKE_LOAD;
  if (slot != NULL) {
    slot->state = SLOT_LOADING;
    slot->refs = 1;
    slot->fd = e->fd;
    slot->offset = e->record_offset;
    slot->length = e->record_length;
    slot->multihash_length = e->multihash_length;
    memcpy(slot->multihash, e->multihash, e->multihash_length);
    slot->used = ++record_clock;
  }
  uv_mutex_unlock(&record_slots_mut);
  return slot;
}

/*
 * Wait until a joined slot is no longer being read: 1 when it is ready to
 * copy from; 0 when its reader failed (the reference is dropped then). A
 * slot with a reference held is never claimed for another record, so a
 * ready one stays as it is until released.
 */
static int slot_wait (fuse3_record_slot_t *slot) {
  uv_mutex_lock(&record_slots_mut);
  while (slot->state == SLOT_LOADING) uv_cond_wait(&record_slots_cond, &record_slots_mut);
  int ready = slot->state == SLOT_READY;
  if (!ready) slot->refs--;
  uv_mutex_unlock(&record_slots_mut);
  return ready;
}

/* A claimed slot's read is over: ready when `ok` (the caller keeps its reference), empty otherwise. */
static void slot_settle (fuse3_record_slot_t *slot, int ok) {
  uv_mutex_lock(&record_slots_mut);
  slot->state = ok ? SLOT_READY : SLOT_EMPTY;
  if (!ok) slot->refs--;
  uv_cond_broadcast(&record_slots_cond);
  uv_mutex_unlock(&record_slots_mut);
}

static void slot_release (fuse3_record_slot_t *slot) {
  uv_mutex_lock(&record_slots_mut);
  slot->refs--;
  uv_mutex_unlock(&record_slots_mut);
}

#define RECORD_UNREAD -1
#define RECORD_REFUSED -2

/*
 * Read the record of place `e` into `*data` (grown as needed) and check it as
 * the block store does: 0 when good, RECORD_REFUSED when it fails a check,
 * RECORD_UNREAD when it cannot be read. Counted in `counts`.
 */
static int read_record (const fuse3_place_t *e, char **data, size_t *cap, fuse3_read_counts_t *counts) {
  if (*cap < e->record_length) {
    char *grown = realloc(*data, e->record_length);
    if (grown == NULL) return RECORD_UNREAD;
    *data = grown;
    *cap = e->record_length;
  }
  size_t got = 0;
  while (got < e->record_length) {
    ssize_t n = pread(e->fd, *data + got, e->record_length - got, e->record_offset + got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return RECORD_UNREAD;
    got += (size_t) n;
  }
  const uint8_t *r = (const uint8_t *) *data;
  /* [0,4) bytes' length, [4,8) crc32c, [8] multihash length, then the multihash and the bytes */
  if (r[8] != e->multihash_length || (uint64_t) 9 + r[8] + le32(r) != e->record_length ||
      memcmp(r + 9, e->multihash, e->multihash_length) != 0 ||
      crc32c(crc32c(0, r, 4), r + 8, e->record_length - 8) != le32(r + 4)) {
    __atomic_add_fetch(&counts->refused, 1, __ATOMIC_RELAXED);
    return RECORD_REFUSED;
  }
  __atomic_add_fetch(&counts->records, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&counts->bytes, le32(r), __ATOMIC_RELAXED);
  return 0;
}

/* Places whose slots one request holds at once (a 1 MiB request spans one to three records of a file written with the default chunker). */
#define PLACES_AT_ONCE 16

int read_places (const fuse3_place_t *places, uint32_t n, char *buf, size_t len, char **scratch, size_t *scratch_cap, fuse3_read_counts_t *counts) {
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    const fuse3_place_t *e = &places[i];
    if (e->record_length < 9 || e->multihash_length > FUSE3_MAX_MULTIHASH || (uint64_t) e->from + e->length > e->record_length || (uint64_t) e->to + e->length > len) return -1;
    if (e->to + e->length > total) total = e->to + e->length;
  }
  for (uint32_t start = 0; start < n; start += PLACES_AT_ONCE) {
    uint32_t end = n - start > PLACES_AT_ONCE ? start + PLACES_AT_ONCE : n;
    fuse3_record_slot_t *slots[PLACES_AT_ONCE];
    int how[PLACES_AT_ONCE];
    int failed = 0;
    /* 1. every record's slot, claimed or joined, without waiting */
    for (uint32_t i = start; i < end; i++) slots[i - start] = slot_take(&places[i], &how[i - start]);
    /*
     * 2. the records this thread claimed (or reads alone), before it waits for
     * any another thread is reading: the request in flight beside this one
     * usually reads the record this one starts with, and waited for first,
     * its read held this request's own read back (the two requests' disk
     * reads ran one after the other instead of at once)
     */
    for (uint32_t i = start; i < end; i++) {
      const fuse3_place_t *e = &places[i];
      fuse3_record_slot_t *slot = slots[i - start];
      if (how[i - start] == TAKE_LOAD) {
        /* the slot is this thread's alone until settled; after a failure, settled unread (its waiters read it alone) */
        int ok = !failed && read_record(e, &slot->data, &slot->cap, counts) == 0;
        slot_settle(slot, ok);
        if (!ok) { slots[i - start] = NULL; failed = 1; }
      } else if (how[i - start] == TAKE_ALONE && !failed) {
        if (read_record(e, scratch, scratch_cap, counts) != 0) failed = 1;
        else memcpy(buf + e->to, *scratch + e->from, e->length);
      }
    }
    /* 3. copied from the slots (those other threads read waited for), every reference released */
    for (uint32_t i = start; i < end; i++) {
      const fuse3_place_t *e = &places[i];
      fuse3_record_slot_t *slot = slots[i - start];
      if (slot == NULL) continue;
      if (failed) { slot_release(slot); continue; }
      if (how[i - start] == TAKE_LOAD || slot_wait(slot)) {
        memcpy(buf + e->to, slot->data + e->from, e->length);
        slot_release(slot);
        continue;
      }
      /* the thread that claimed it could not read it (slot_wait dropped the reference): read here, alone */
      if (read_record(e, scratch, scratch_cap, counts) != 0) failed = 1;
      else memcpy(buf + e->to, *scratch + e->from, e->length);
    }
    if (failed) return -1;
  }
  return (int) total;
}

/*
 * Places answered ahead, per open file. JavaScript may answer a read with
 * the places of more bytes than it asked for: those of the records that
 * follow, which it has looked up already (record-places.ts). They are kept
 * here for the file handle, and a later read of that handle that lies wholly
 * within them is answered on its FUSE thread without asking JavaScript: a
 * sequential reader then waits on the event loop once per several requests,
 * not once per request. The places stay valid while the handle is open:
 * JavaScript holds their pack files until the handle's release, which drops
 * them here first; a place that fails its check drops them too, and the read
 * is asked of JavaScript again. Keyed by mount and handle number, as two
 * mounts number their handles apart.
 *
 * One ask at a time per handle for the bytes just after it: the kernel's
 * read-ahead sends a sequential reader's next requests together, on several
 * FUSE threads, and each missed the kept places and asked JavaScript, which
 * answered each with the same places ahead (4 to 9 asks for 16 requests of
 * 1 MiB, rather than 3). A request that lies within FUSE3_JOIN_BYTES after
 * the start of the handle's ask in flight waits for its answer (until
 * FUSE3_JOIN_WAIT_NS after it began to wait) and is then served from it when
 * it covers the request. Only while the handle's last answer was places: a
 * handle answered with bytes (a file not held here, a fetch from peers)
 * keeps every request asking at once, in parallel, as does a request
 * elsewhere in the file (a random reader) and the asks of a handle that has
 * no slot yet (its first answer with places takes the slot, as any answer
 * does; an ask never does).
 */
#define PLACE_CACHE 64
#define FUSE3_JOIN_BYTES (8 * 1024 * 1024)
#define FUSE3_JOIN_WAIT_NS 2000000000ULL
typedef struct {
  void *mount;
  uint64_t fh;
  int used;
  /* the file's bytes [start, end) are at the places, whose `to` counts from start */
  int64_t start;
  int64_t end;
  uint32_t n;
  fuse3_place_t places[FUSE3_MAX_PLACES];
  /* an ask of JavaScript in flight for this handle, from this offset: its token (0: none) */
  uint64_t asking;
  int64_t asking_from;
  /* the handle's last answer held places (then its next requests may wait for its ask in flight) */
  int placed;
} fuse3_place_cache_t;
static fuse3_place_cache_t place_cache[PLACE_CACHE];
static uv_mutex_t place_cache_mut;
static uv_cond_t place_cache_cond;
static uint64_t ask_tokens;

uint32_t clip_places (const fuse3_place_t *in, uint32_t n, int64_t start, int64_t off, size_t len, fuse3_place_t *out) {
  uint32_t count = 0;
  for (uint32_t i = 0; i < n; i++) {
    int64_t lo = start + in[i].to, hi = lo + in[i].length;
    if (lo < off) lo = off;
    if (hi > off + (int64_t) len) hi = off + (int64_t) len;
    if (hi <= lo) continue;
    out[count] = in[i];
    out[count].from = in[i].from + (uint32_t) (lo - (start + in[i].to));
    out[count].length = (uint32_t) (hi - lo);
    out[count].to = (uint32_t) (lo - off);
    count++;
  }
  return count;
}

/* True when slot `c` is handle `fh` of `mount`'s (called locked). */
static int owns (const fuse3_place_cache_t *c, void *mount, uint64_t fh) {
  return c->mount == mount && c->fh == fh;
}

/* The slot of handle `fh` of `mount` (called locked): taken over, emptied, when another handle had it. */
static fuse3_place_cache_t *slot_of (void *mount, uint64_t fh) {
  fuse3_place_cache_t *c = &place_cache[fh % PLACE_CACHE];
  if (!owns(c, mount, fh)) {
    /* another handle's ask in flight here: its asker finds its token gone and keeps nothing */
    if (c->asking != 0) uv_cond_broadcast(&place_cache_cond);
    c->mount = mount;
    c->fh = fh;
    c->used = 0;
    c->asking = 0;
    c->placed = 0;
  }
  return c;
}

/* Keep `n` places of the bytes from `start` in `c` (called locked), unless what it keeps holds them all already. */
static void keep (fuse3_place_cache_t *c, int64_t start, const fuse3_place_t *places, uint32_t n) {
  int64_t end = start;
  for (uint32_t i = 0; i < n; i++) if (start + places[i].to + places[i].length > end) end = start + places[i].to + places[i].length;
  if (c->used && c->start <= start && c->end >= end) return;
  c->used = 1;
  c->start = start;
  c->end = end;
  c->n = n;
  memcpy(c->places, places, n * sizeof(fuse3_place_t));
}

static uint32_t recall_locked (fuse3_place_cache_t *c, void *mount, uint64_t fh, int64_t off, size_t len, fuse3_place_t *out) {
  if (c->used && owns(c, mount, fh) && off >= c->start && off + (int64_t) len <= c->end) return clip_places(c->places, c->n, c->start, off, len, out);
  return 0;
}

uint32_t recall_or_ask (void *mount, uint64_t fh, int64_t off, size_t len, fuse3_place_t *out, uint64_t *token) {
  *token = 0;
  uv_mutex_lock(&place_cache_mut);
  fuse3_place_cache_t *c = &place_cache[fh % PLACE_CACHE];
  /* the ask this request waits for (one at most), and until when */
  uint64_t joined = 0;
  uint64_t deadline = 0;
  for (;;) {
    uint32_t n = recall_locked(c, mount, fh, off, len, out);
    if (n > 0) {
      uv_mutex_unlock(&place_cache_mut);
      return n;
    }
    int ours = owns(c, mount, fh);
    /* an ask in flight just before this request, on a handle answered with places: its answer may well place it */
    if (joined == 0 && ours && c->placed && c->asking != 0 && off >= c->asking_from && off < c->asking_from + FUSE3_JOIN_BYTES) {
      joined = c->asking;
      deadline = uv_hrtime() + FUSE3_JOIN_WAIT_NS;
    }
    if (joined != 0 && ours && c->asking == joined) {
      uint64_t now = uv_hrtime();
      /* woken (an answer, any handle's): look again; timed out: ask */
      if (now < deadline && uv_cond_timedwait(&place_cache_cond, &place_cache_mut, deadline - now) == 0) continue;
    }
    /* ask, marked as the handle's ask in flight when it has its slot and no other ask is */
    if (ours && c->asking == 0) {
      *token = ++ask_tokens;
      c->asking = *token;
      c->asking_from = off;
    }
    uv_mutex_unlock(&place_cache_mut);
    return 0;
  }
}

void asked (void *mount, uint64_t fh, uint64_t token, int64_t start, const fuse3_place_t *places, uint32_t n) {
  uv_mutex_lock(&place_cache_mut);
  fuse3_place_cache_t *c = &place_cache[fh % PLACE_CACHE];
  int wake = 0;
  if (n > 0) {
    c = slot_of(mount, fh);
    keep(c, start, places, n);
    c->placed = 1;
    wake = 1;
  } else if (owns(c, mount, fh)) {
    /* answered with bytes: the handle's next requests ask at once */
    c->placed = 0;
  }
  if (token != 0 && c->asking == token) {
    c->asking = 0;
    wake = 1;
  }
  if (wake) uv_cond_broadcast(&place_cache_cond);
  uv_mutex_unlock(&place_cache_mut);
}

void forget_places (void *mount, uint64_t fh) {
  uv_mutex_lock(&place_cache_mut);
  fuse3_place_cache_t *c = &place_cache[fh % PLACE_CACHE];
  if (owns(c, mount, fh)) c->used = 0;
  uv_mutex_unlock(&place_cache_mut);
}

void forget_mount_places (void *mount) {
  uv_mutex_lock(&place_cache_mut);
  for (int i = 0; i < PLACE_CACHE; i++) {
    if (place_cache[i].mount != mount) continue;
    place_cache[i].used = 0;
    place_cache[i].asking = 0;
    place_cache[i].placed = 0;
  }
  uv_cond_broadcast(&place_cache_cond);
  uv_mutex_unlock(&place_cache_mut);
}

void records_init (void) {
  crc32c_init();
  uv_mutex_init(&record_slots_mut);
  uv_cond_init(&record_slots_cond);
  uv_mutex_init(&place_cache_mut);
  uv_cond_init(&place_cache_cond);
}
