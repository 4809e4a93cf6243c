/*
 * Shoal's FUSE binding over libfuse3 (high-level API, FUSE_USE_VERSION 31).
 *
 * Why: the kernel sends a read of at most `max_pages` pages per request, and
 * only libfuse >= 3.6 negotiates max_pages; over libfuse2 every request is
 * 128 KiB, each a serial round trip through the binding and the event loop.
 * libfuse3 negotiates 1 MiB (256 pages): an eighth of the round trips
 * (docs/decisions.md, "FUSE binding over libfuse3").
 *
 * How: the threading of the fuse-native 2.2.6 binding (MIT, see LICENSE),
 * ported to the libfuse3 operation signatures. libfuse's loop runs on its
 * own threads; each FUSE thread owns a block of "thread locals" (a Buffer
 * allocated by JavaScript) with a uv_async handle and a semaphore. An
 * operation stores its arguments there, wakes the event loop with
 * uv_async_send and waits on the semaphore; the event loop calls the
 * JavaScript handler of the operation (node/fuse/fuse3.ts), which answers
 * through fuse3_signal_<op> (results copied in, semaphore posted).
 *
 * Only the operations Shoal serves are bound; the others answer ENOSYS.
 * libfuse3 folds fgetattr/ftruncate into getattr/truncate with a file info:
 * a truncate with one calls the ftruncate handler. A getattr also says
 * whether the kernel asked about an inode it holds (request_opcode below).
 */
#define FUSE_USE_VERSION 31

#include <uv.h>
#include <node_api.h>
#include "napi-macros.h"

#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <assert.h>
#include <errno.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include <unistd.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/uio.h>

#include "records.h"

#define FUSE3_CALLBACK(fn, blk)\
  napi_env env = ft->env;\
  napi_handle_scope scope;\
  napi_open_handle_scope(env, &scope);\
  napi_value ctx;\
  napi_get_reference_value(env, ft->ctx, &ctx);\
  napi_value callback;\
  napi_get_reference_value(env, fn, &callback);\
  blk\
  napi_close_handle_scope(env, scope);

/*
 * True when `s` is valid UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF). Names reach JavaScript as strings: a name that is not
 * UTF-8 would be decoded with U+FFFD for its bad bytes, so `u\xff` and
 * `u\xfe` would both be the file `u\uFFFD` and a write to one would replace
 * the other. Such a name is refused with EILSEQ instead, before JavaScript
 * sees it.
 */
static int utf8_valid (const char *text) {
  const unsigned char *s = (const unsigned char *) text;
  while (*s != 0) {
    unsigned char c = *s;
    if (c < 0x80) { s++; continue; }
    int n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c == 0xe0) { n = 2; lo = 0xa0; }
    else if (c >= 0xe1 && c <= 0xec) n = 2;
    else if (c == 0xed) { n = 2; hi = 0x9f; }
    else if (c >= 0xee && c <= 0xef) n = 2;
    else if (c == 0xf0) { n = 3; lo = 0x90; }
    else if (c >= 0xf1 && c <= 0xf3) n = 3;
    else if (c == 0xf4) { n = 3; hi = 0x8f; }
    else return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i <= n; i++) if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    s += n + 1;
  }
  return 1;
}

/*
 * The opcode of the kernel request this FUSE thread serves (0: unknown).
 * libfuse's high-level API answers the lookup of a name (FUSE_LOOKUP) and
 * the getattr of an inode the kernel holds (FUSE_GETATTR: an fstat, which
 * the kernel sends without the file's handle) with the same getattr(path).
 * They differ for a file removed on another node while it is open here:
 * its inode still answers (POSIX keeps an open file's attributes), its name
 * does not. libfuse reads a request and serves it on the same thread, so
 * the mount reads the device through request_read (libfuse's custom io,
 * >= 3.13), which notes the opcode here; getattr passes it on.
 */
static __thread uint32_t request_opcode = 0;
/* the inode the request is about (the kernel's nodeid, which is libfuse's ino): refresh_attrs */
static __thread uint64_t request_nodeid = 0;
/* FUSE_GETATTR in <linux/fuse.h> (the kernel's ABI; that header clashes with libfuse's) */
#define KERNEL_FUSE_GETATTR 3

#if FUSE_MAJOR_VERSION > 3 || (FUSE_MAJOR_VERSION == 3 && FUSE_MINOR_VERSION >= 13)
#define FUSE3_REQUEST_OPCODES 1
/* libfuse's read of a request, noting its opcode: every request starts with
 * struct fuse_in_header, its length (u32) then its opcode (u32) */
static ssize_t request_read (int fd, void *buf, size_t len, void *userdata) {
  ssize_t n = read(fd, buf, len);
  request_opcode = n >= (ssize_t) (2 * sizeof(uint32_t)) ? ((const uint32_t *) buf)[1] : 0;
  /* then the request's unique id (u64) and its nodeid (u64) */
  if (n >= 24) memcpy(&request_nodeid, (const char *) buf + 16, sizeof(request_nodeid));
  else request_nodeid = 0;
  return n;
}

static ssize_t request_writev (int fd, struct iovec *iov, int count, void *userdata) {
  return writev(fd, iov, count);
}

/* No splice: a request read through a pipe cannot be looked at first. It
 * costs nothing here: the table has no write_buf, so libfuse copied a
 * spliced write out of its pipe into memory anyway. */
static const struct fuse_custom_io request_io = { .writev = request_writev, .read = request_read };
#endif

static void refresh_attrs (void);

#define FUSE3_HANDLER(name, blk)\
  fuse3_locals_t *l = get_thread_locals();\
  l->op = op_##name;\
  l->op_fn = fuse3_dispatch_##name;\
  l->dest = NULL;\
  blk\
  if (!names_valid(l)) return -EILSEQ;\
  uv_async_send(&(l->async));\
  uv_sem_wait(&(l->sem));\
  if (l->refresh_attrs) { l->refresh_attrs = 0; refresh_attrs(); }\
  return l->res;

/* An operation: its dispatch on the event loop (callbackBlk fills argv[2..]),
 * its signal (signalBlk reads the JavaScript answer) and its FUSE entry point
 * fuse3_<name> with the libfuse3 signature (callBlk stores the arguments). */
#define FUSE3_METHOD(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk, signalBlk)\
  static void fuse3_dispatch_##name (uv_async_t* handle, fuse3_locals_t* l, fuse3_thread_t* ft) {\
    uint32_t op = op_##name;\
    FUSE3_CALLBACK(ft->handlers[op], {\
      napi_value argv[callbackArgs + 2];\
      napi_get_reference_value(env, l->self, &(argv[0]));\
      napi_create_uint32(env, l->op, &(argv[1]));\
      callbackBlk\
      NAPI_MAKE_CALLBACK(env, NULL, ctx, callback, callbackArgs + 2, argv, NULL)\
    })\
  }\
  NAPI_METHOD(fuse3_signal_##name) {\
    NAPI_ARGV(signalArgs + 2)\
    NAPI_ARGV_BUFFER_CAST(fuse3_locals_t *, l, 0);\
    NAPI_ARGV_INT32(res, 1);\
    signalBlk\
    l->res = res;\
    uv_sem_post(&(l->sem));\
    return NULL;\
  }\
  static int fuse3_##name signature {\
    FUSE3_HANDLER(name, callBlk)\
  }

#define FUSE3_METHOD_VOID(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk)\
  FUSE3_METHOD(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk, {})

#define FUSE3_UINT64_TO_INTS_ARGV(n, pos)\
  uint32_t low##pos = n % 4294967296;\
  uint32_t high##pos = (n - low##pos) / 4294967296;\
  napi_create_uint32(env, low##pos, &(argv[pos]));\
  napi_create_uint32(env, high##pos, &(argv[pos + 1]));

#define FUSE3_PATH_ARGV(pos) napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[pos]));
#define FUSE3_FH_ARGV(pos) napi_create_uint32(env, l->info != NULL ? (uint32_t) l->info->fh : 0, &(argv[pos]));

/* Opcodes: the index of each handler in the array node/fuse/fuse3.ts passes. */
static const uint32_t op_init = 0;
static const uint32_t op_statfs = 1;
static const uint32_t op_getattr = 2;
static const uint32_t op_flush = 3;
static const uint32_t op_fsync = 4;
static const uint32_t op_readdir = 5;
static const uint32_t op_truncate = 6;
static const uint32_t op_ftruncate = 7;
static const uint32_t op_utimens = 8;
static const uint32_t op_readlink = 9;
static const uint32_t op_chown = 10;
static const uint32_t op_chmod = 11;
static const uint32_t op_mknod = 12;
static const uint32_t op_open = 13;
static const uint32_t op_read = 14;
static const uint32_t op_write = 15;
static const uint32_t op_release = 16;
static const uint32_t op_create = 17;
static const uint32_t op_unlink = 18;
static const uint32_t op_rename = 19;
static const uint32_t op_link = 20;
static const uint32_t op_symlink = 21;
static const uint32_t op_mkdir = 22;
static const uint32_t op_rmdir = 23;
#define OP_COUNT 24

typedef struct {
  napi_env env;
  pthread_t thread;
  napi_ref ctx;
  napi_ref malloc;
  napi_ref handlers[OP_COUNT];
  int implemented[OP_COUNT];

  struct fuse *fuse;
  char mnt[4096];
  int mounted;

  /* what the kernel granted at init, read by fuse3_conn_info */
  uint32_t max_write;
  uint32_t max_read;
  uint32_t max_readahead;
  uint32_t proto_minor;

  uv_async_t async;
  uv_mutex_t mut;
  uv_sem_t sem;

  /* the reads from pack records of this mount, read by fuse3_read_counts */
  fuse3_read_counts_t read_counts;
} fuse3_thread_t;

typedef struct {
  napi_ref self;
  uint32_t op;
  void *op_fn;

  const char *path;
  const char *dest;
  char *linkname;
  struct fuse_file_info *info;
  const void *buf;
  off_t offset;
  size_t len;
  mode_t mode;
  dev_t dev;
  uid_t uid;
  gid_t gid;
  uint64_t atime;
  uint64_t mtime;
  int32_t res;

  struct stat *stat;
  /* a getattr of an inode the kernel holds (request_opcode), not a lookup */
  int held;
  /* an open answered with stale kernel attributes: refreshed before the answer (refresh_attrs) */
  int refresh_attrs;
  struct statvfs *statvfs;
  fuse_fill_dir_t readdir_filler;

  fuse3_thread_t *fuse;
  uv_sem_t sem;
  uv_async_t async;

  /* a read answered with record places (records.c, records.h) */
  uint32_t places_n;
  fuse3_place_t places[FUSE3_MAX_PLACES];
  /* set when the places failed: the read is asked again, answered with bytes */
  int read_slow;
  /* this thread's buffer for one record */
  char *record;
  size_t record_cap;
} fuse3_locals_t;

/* True when the request's names are valid UTF-8 (utf8_valid): its path, and its second path (rename, link). */
static int names_valid (const fuse3_locals_t *l) {
  return (l->path == NULL || utf8_valid(l->path)) && (l->dest == NULL || utf8_valid(l->dest));
}

static pthread_key_t thread_locals_key;
static fuse3_locals_t* get_thread_locals ();

static uint64_t uint32s_to_uint64 (uint32_t **ints) {
  uint64_t low = *((*ints)++);
  uint64_t high = *((*ints)++);
  return high * 4294967296 + low;
}

static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  uint64_t ms = uint32s_to_uint64(ints);
  ts->tv_sec = ms / 1000;
  ts->tv_nsec = (ms % 1000) * 1000000;
}

/* UTIME_OMIT ("leave this time as it is") reaches JavaScript as this many ms
 * (node/fuse/filesystem.ts, utimens): taken for "now", `touch -a` set the
 * modification time to now */
#define FUSE3_TIME_UNCHANGED UINT64_MAX

static uint64_t timespec_to_ms (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return FUSE3_TIME_UNCHANGED;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
  }
  return (uint64_t) ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* The stat layout of node/fuse/fuse3.ts statArray (18 uint32s). */
static void populate_stat (uint32_t *ints, struct stat* stat) {
  memset(stat, 0, sizeof(struct stat));
  stat->st_mode = *ints++;
  stat->st_uid = *ints++;
  stat->st_gid = *ints++;
  stat->st_size = uint32s_to_uint64(&ints);
  stat->st_dev = *ints++;
  stat->st_nlink = *ints++;
  stat->st_ino = *ints++;
  stat->st_rdev = *ints++;
  stat->st_blksize = *ints++;
  stat->st_blocks = uint32s_to_uint64(&ints);
  uint32s_to_timespec(&stat->st_atim, &ints);
  uint32s_to_timespec(&stat->st_mtim, &ints);
  uint32s_to_timespec(&stat->st_ctim, &ints);
}

static void populate_statvfs (uint32_t *ints, struct statvfs* statvfs) {
  statvfs->f_bsize = *ints++;
  statvfs->f_frsize = *ints++;
  statvfs->f_blocks = *ints++;
  statvfs->f_bfree = *ints++;
  statvfs->f_bavail = *ints++;
  statvfs->f_files = *ints++;
  statvfs->f_ffree = *ints++;
  statvfs->f_favail = *ints++;
  statvfs->f_fsid = *ints++;
  statvfs->f_flag = *ints++;
  statvfs->f_namemax = *ints++;
}

FUSE3_METHOD(statfs, 1, 1, (const char *path, struct statvfs *statvfs), {
  l->path = path;
  l->statvfs = statvfs;
}, {
  FUSE3_PATH_ARGV(2)
}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_statvfs(ints, l->statvfs);
})

FUSE3_METHOD(getattr, 3, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {
  l->path = path;
  l->stat = stat;
  l->info = info;
  l->held = request_opcode == KERNEL_FUSE_GETATTR;
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_FH_ARGV(3)
  napi_get_boolean(env, l->held != 0, &(argv[4]));
}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_stat(ints, l->stat);
})

/*
 * An open's answer: the handle, and how it uses the kernel's pages of the
 * file (node/fuse/adapter.ts, OpenPages): 1 keeps those earlier opens left,
 * 2 reads past them (direct_io), 0 drops them. One set of pages per file,
 * shared by all its handles: the mount has no auto_cache, which kept them
 * whenever the file's mtime and size were unchanged, though another version
 * of the file may have filled them (a handle opened before it was replaced).
 */
static void fuse3_opened (struct fuse_file_info *info, int32_t fd, uint32_t pages) {
  if (fd != 0) info->fh = fd;
  /* stale attributes (bit 4): the pages were filled under them, dropped too */
  info->keep_cache = (pages & 3) == 1 && (pages & 4) == 0;
  info->direct_io = (pages & 3) == 2;
}

/*
 * An open's answer with bit 4 of its pages set: the kernel's size of the
 * file is not the version opened's (another node's version of another
 * size arrived within the attribute timeout). Why: the kernel keeps a
 * file's size for `attr_timeout` and reads through its pages stop there, so
 * an open of a version that grew read its first bytes cut to the old size,
 * exit 0 (an operator's test: 24 of 693 reads of a file another node
 * rewrote every 0.2 s). How: before the open is answered, its FUSE thread
 * tells the kernel to forget the inode's attributes, and its pages are
 * dropped by the open itself (keep_cache off), so that `fstat` and a read
 * past the old end ask again. The notice (FUSE_NOTIFY_INVAL_INODE) names
 * the inode the request is about, read from its header (request_read), and
 * a negative offset: attributes only. The kernel then takes no page or
 * inode lock for it, so it cannot wait on a read in flight (which
 * JavaScript answers, and which may wait in libfuse behind a rename that
 * waits for this open's path locks); libfuse's fuse_invalidate_path drops
 * the pages too and could. Without request_read (libfuse < 3.13) nothing
 * is refreshed: the cut read stays possible within the attribute timeout.
 */
static void refresh_attrs (void) {
#ifdef FUSE3_REQUEST_OPCODES
  struct fuse_context *ctx = fuse_get_context();
  if (ctx == NULL || ctx->fuse == NULL || request_nodeid == 0) return;
  fuse_lowlevel_notify_inval_inode(fuse_get_session(ctx->fuse), request_nodeid, -1, 0);
#endif
}

FUSE3_METHOD(open, 2, 2, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->info != NULL ? (uint32_t) l->info->flags : 0, &(argv[3]));
}, {
  NAPI_ARGV_INT32(fd, 2)
  NAPI_ARGV_UINT32(pages, 3)
  fuse3_opened(l->info, fd, pages);
  l->refresh_attrs = (pages & 4) != 0;
})

FUSE3_METHOD(create, 2, 2, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->mode, &(argv[3]));
}, {
  NAPI_ARGV_INT32(fd, 2)
  NAPI_ARGV_UINT32(pages, 3)
  fuse3_opened(l->info, fd, pages);
})

FUSE3_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2], struct fuse_file_info *info), {
  l->path = path;
  l->atime = timespec_to_ms(&tv[0]);
  l->mtime = timespec_to_ms(&tv[1]);
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE3_UINT64_TO_INTS_ARGV(l->mtime, 5)
})

FUSE3_METHOD_VOID(release, 2, 0, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
  if (info != NULL) forget_places(fuse_get_context()->private_data, info->fh);
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_FH_ARGV(3)
})

/* read and write hand JavaScript the FUSE thread's own buffer (no copy);
 * the signal detaches it, so no view of it outlives the request. */
#define FUSE3_DATA_METHOD(name, buf_type)\
  FUSE3_METHOD(name, 6, 2, (const char *path, buf_type buf, size_t len, off_t offset, struct fuse_file_info *info), {\
    l->path = path;\
    l->buf = buf;\
    l->len = len;\
    l->offset = offset;\
    l->info = info;\
  }, {\
    FUSE3_PATH_ARGV(2)\
    FUSE3_FH_ARGV(3)\
    napi_create_external_buffer(env, l->len, (char *) l->buf, NULL, NULL, &(argv[4]));\
    napi_create_uint32(env, l->len, &(argv[5]));\
    FUSE3_UINT64_TO_INTS_ARGV(l->offset, 6)\
  }, {\
    assert(napi_detach_arraybuffer(env, argv[3]) == napi_ok);\
  })

FUSE3_DATA_METHOD(write, const char *)

static void fuse3_dispatch_read (uv_async_t* handle, fuse3_locals_t* l, fuse3_thread_t* ft) {
  uint32_t op = op_read;
  FUSE3_CALLBACK(ft->handlers[op], {
    napi_value argv[9];
    napi_get_reference_value(env, l->self, &(argv[0]));
    napi_create_uint32(env, l->op, &(argv[1]));
    FUSE3_PATH_ARGV(2)
    FUSE3_FH_ARGV(3)
    napi_create_external_buffer(env, l->len, (char *) l->buf, NULL, NULL, &(argv[4]));
    napi_create_uint32(env, l->len, &(argv[5]));
    FUSE3_UINT64_TO_INTS_ARGV(l->offset, 6)
    napi_get_boolean(env, l->read_slow != 0, &(argv[8]));
    NAPI_MAKE_CALLBACK(env, NULL, ctx, callback, 9, argv, NULL)
  })
}

/* fuse3_signal_read(locals, res, 0, arraybuffer): the answer is in the buffer */
NAPI_METHOD(fuse3_signal_read) {
  NAPI_ARGV(4)
  NAPI_ARGV_BUFFER_CAST(fuse3_locals_t *, l, 0);
  NAPI_ARGV_INT32(res, 1);
  assert(napi_detach_arraybuffer(env, argv[3]) == napi_ok);
  l->places_n = 0;
  l->res = res;
  uv_sem_post(&(l->sem));
  return NULL;
}

/*
 * fuse3_signal_read_places(locals, count, places, arraybuffer): the answer is
 * in `count` places, packed in `places` as uint32s: fd, record offset (low,
 * high), record length, from, length, to, multihash length, then the
 * multihash in FUSE3_MAX_MULTIHASH bytes (24 uint32s a place).
 */
NAPI_METHOD(fuse3_signal_read_places) {
  NAPI_ARGV(4)
  NAPI_ARGV_BUFFER_CAST(fuse3_locals_t *, l, 0);
  NAPI_ARGV_UINT32(count, 1);
  NAPI_ARGV_BUFFER_CAST(uint32_t *, ints, 2);
  assert(napi_detach_arraybuffer(env, argv[3]) == napi_ok);
  if (count > FUSE3_MAX_PLACES || ints_len < (size_t) count * 24 * 4) {
    /* not a valid answer: the read fails rather than guesses */
    l->places_n = 0;
    l->res = -EIO;
  } else {
    for (uint32_t i = 0; i < count; i++) {
      uint32_t *v = ints + i * 24;
      fuse3_place_t *e = &(l->places[i]);
      e->fd = (int32_t) v[0];
      e->record_offset = (int64_t) ((uint64_t) v[2] * 4294967296u + v[1]);
      e->record_length = v[3];
      e->from = v[4];
      e->length = v[5];
      e->to = v[6];
      e->multihash_length = v[7] > FUSE3_MAX_MULTIHASH ? FUSE3_MAX_MULTIHASH + 1 : v[7];
      memcpy(e->multihash, v + 8, FUSE3_MAX_MULTIHASH);
    }
    l->places_n = count;
    l->res = 0;
  }
  uv_sem_post(&(l->sem));
  return NULL;
}

/*
 * Serve a read from the places in `l->places`: the bytes read, or -1 when
 * there are none or one failed its check; then the handle's kept places are
 * dropped and the request is marked to be asked again and read the slow way.
 */
static int serve_places (fuse3_locals_t *l, void *mount, struct fuse_file_info *info, char *buf, size_t len, fuse3_read_counts_t *counts) {
  int got = l->places_n == 0 ? -1 : read_places(l->places, l->places_n, buf, len, &l->record, &l->record_cap, counts);
  if (got >= 0) return got;
  if (info != NULL) forget_places(mount, info->fh);
  l->read_slow = 1;
  return -1;
}

static int fuse3_read (const char *path, char *buf, size_t len, off_t offset, struct fuse_file_info *info) {
  fuse3_locals_t *l = get_thread_locals();
  void *mount = fuse_get_context()->private_data;
  fuse3_read_counts_t *counts = &((fuse3_thread_t *) mount)->read_counts;
  l->read_slow = 0;
  uint64_t token = 0;
  if (info != NULL && (l->places_n = recall_or_ask(mount, info->fh, offset, len, l->places, &token)) > 0) {
    int got = serve_places(l, mount, info, buf, len, counts);
    if (got >= 0) return got;
  }
  for (;;) {
    l->op = op_read;
    l->op_fn = fuse3_dispatch_read;
    l->path = path;
    l->buf = buf;
    l->len = len;
    l->offset = offset;
    l->info = info;
    l->places_n = 0;
    uv_async_send(&(l->async));
    uv_sem_wait(&(l->sem));
    /* places past the request are kept for the handle's next reads; those waiting on this ask are woken */
    if (info != NULL) asked(mount, info->fh, token, offset, l->places, l->read_slow ? 0 : l->places_n);
    token = 0;
    if (l->places_n == 0) return l->res;
    if (l->read_slow) return -EIO;
    l->places_n = clip_places(l->places, l->places_n, offset, offset, len, l->places);
    /* an answer with none of the request's bytes is not an end of file: it is read the slow way */
    int got = serve_places(l, mount, info, buf, len, counts);
    if (got >= 0) return got;
  }
}

FUSE3_METHOD(readdir, 1, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info, enum fuse_readdir_flags flags), {
  l->buf = buf;
  l->path = path;
  l->offset = offset;
  l->info = info;
  l->readdir_filler = filler;
}, {
  FUSE3_PATH_ARGV(2)
}, {
  uint32_t stats_length;
  uint32_t names_length;
  napi_get_array_length(env, argv[3], &stats_length);
  napi_get_array_length(env, argv[2], &names_length);
  napi_value raw_names = argv[2];
  napi_value raw_stats = argv[3];
  NAPI_FOR_EACH(raw_names, raw_name) {
    NAPI_UTF8(name, 1024, raw_name)
    struct stat st;
    struct stat *stp = NULL;
    if (names_length == stats_length) {
      napi_value raw_stat;
      napi_get_element(env, raw_stats, i, &raw_stat);
      NAPI_BUFFER_CAST(uint32_t*, stats_array, raw_stat);
      populate_stat(stats_array, &st);
      stp = &st;
    }
    if (l->readdir_filler((char *) l->buf, name, stp, 0, 0) == 1) break;
  }
})

FUSE3_METHOD_VOID(flush, 2, 0, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_FH_ARGV(3)
})

FUSE3_METHOD_VOID(fsync, 3, 0, (const char *path, int datasync, struct fuse_file_info *info), {
  l->path = path;
  l->mode = datasync;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->mode, &(argv[3]));
  FUSE3_FH_ARGV(4)
})

FUSE3_METHOD_VOID(truncate, 3, 0, (const char *path, off_t size, struct fuse_file_info *info), {
  l->path = path;
  l->offset = size;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_UINT64_TO_INTS_ARGV(l->offset, 3)
})

FUSE3_METHOD_VOID(ftruncate, 4, 0, (const char *path, off_t size, struct fuse_file_info *info), {
  l->path = path;
  l->offset = size;
  l->info = info;
}, {
  FUSE3_PATH_ARGV(2)
  FUSE3_FH_ARGV(3)
  FUSE3_UINT64_TO_INTS_ARGV(l->offset, 4)
})

/* libfuse3 has one truncate, with the file info when a handle asks */
static int fuse3_truncate_any (const char *path, off_t size, struct fuse_file_info *info) {
  fuse3_thread_t *ft = (fuse3_thread_t *) fuse_get_context()->private_data;
  if (info != NULL && ft->implemented[op_ftruncate]) return fuse3_ftruncate(path, size, info);
  if (!ft->implemented[op_truncate]) return -ENOSYS;
  return fuse3_truncate(path, size, info);
}

FUSE3_METHOD(readlink, 1, 1, (const char *path, char *linkname, size_t len), {
  l->path = path;
  l->linkname = linkname;
  l->len = len;
}, {
  FUSE3_PATH_ARGV(2)
}, {
  NAPI_ARGV_UTF8(linkname, l->len, 2)
  strncpy(l->linkname, linkname, l->len);
})

FUSE3_METHOD_VOID(chown, 3, 0, (const char *path, uid_t uid, gid_t gid, struct fuse_file_info *info), {
  l->path = path;
  l->uid = uid;
  l->gid = gid;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->uid, &(argv[3]));
  napi_create_uint32(env, l->gid, &(argv[4]));
})

FUSE3_METHOD_VOID(chmod, 2, 0, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->mode, &(argv[3]));
})

FUSE3_METHOD_VOID(mknod, 3, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
})

FUSE3_METHOD_VOID(unlink, 1, 0, (const char *path), {
  l->path = path;
}, {
  FUSE3_PATH_ARGV(2)
})

FUSE3_METHOD_VOID(rename, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

/* rename flags (RENAME_NOREPLACE, RENAME_EXCHANGE) are not served: EINVAL,
 * what the kernel answers for them over libfuse2, and callers fall back */
static int fuse3_rename_flags (const char *path, const char *dest, unsigned int flags) {
  if (flags != 0) return -EINVAL;
  return fuse3_rename(path, dest);
}

FUSE3_METHOD_VOID(link, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE3_METHOD_VOID(symlink, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE3_METHOD_VOID(mkdir, 2, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
}, {
  FUSE3_PATH_ARGV(2)
  napi_create_uint32(env, l->mode, &(argv[3]));
})

FUSE3_METHOD_VOID(rmdir, 1, 0, (const char *path), {
  l->path = path;
}, {
  FUSE3_PATH_ARGV(2)
})

static void fuse3_dispatch_init (uv_async_t* handle, fuse3_locals_t* l, fuse3_thread_t* ft) {
  FUSE3_CALLBACK(ft->handlers[op_init], {
    napi_value argv[2];
    napi_get_reference_value(env, l->self, &(argv[0]));
    napi_create_uint32(env, l->op, &(argv[1]));
    NAPI_MAKE_CALLBACK(env, NULL, ctx, callback, 2, argv, NULL);
  })
}

NAPI_METHOD(fuse3_signal_init) {
  NAPI_ARGV(2)
  NAPI_ARGV_BUFFER_CAST(fuse3_locals_t *, l, 0);
  NAPI_ARGV_INT32(res, 1);
  l->res = res;
  uv_sem_post(&(l->sem));
  return NULL;
}

static void * fuse3_init (struct fuse_conn_info *conn, struct fuse_config *cfg) {
  fuse3_thread_t *ft = (fuse3_thread_t *) fuse_get_context()->private_data;
  ft->max_write = conn->max_write;
  ft->max_read = conn->max_read;
  ft->max_readahead = conn->max_readahead;
  ft->proto_minor = conn->proto_minor;
  /* The kernel offered its bdi's read-ahead (128 KiB) and, on our reply,
   * lowers the bdi's window to what we answer. JavaScript raises the window
   * (read_ahead_kb) once this init has reached it, which may be before the
   * kernel reads our reply: answering what was offered would then cut it
   * back to 128 KiB. Answering no bound leaves whichever window is set. */
  conn->max_readahead = UINT32_MAX;
  /* as over libfuse2: the table's readdir gives names only, and READDIRPLUS
   * without attributes makes the kernel look each name up anyway */
  conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);

  fuse3_locals_t *l = get_thread_locals();
  l->op = op_init;
  l->op_fn = fuse3_dispatch_init;
  uv_async_send(&(l->async));
  uv_sem_wait(&(l->sem));
  return ft;
}

static void fuse3_dispatch (uv_async_t* handle) {
  fuse3_locals_t *l = (fuse3_locals_t *) handle->data;
  fuse3_thread_t *ft = l->fuse;
  void (*fn)(uv_async_t *, fuse3_locals_t *, fuse3_thread_t *) = l->op_fn;
  fn(handle, l, ft);
}

/* On the event loop: a FUSE thread asks for its locals (allocated by JavaScript). */
static void fuse3_async_init (uv_async_t* handle) {
  fuse3_thread_t *ft = (fuse3_thread_t *) handle->data;
  fuse3_locals_t *l;

  FUSE3_CALLBACK(ft->malloc, {
    napi_value argv[1];
    napi_create_uint32(ft->env, (uint32_t) sizeof(fuse3_locals_t), &(argv[0]));
    napi_value buf;
    NAPI_MAKE_CALLBACK(ft->env, NULL, ctx, callback, 1, argv, &buf);
    size_t l_len;
    napi_get_buffer_info(env, buf, (void **) &l, &l_len);
    napi_create_reference(env, buf, 1, &(l->self));
  })

  int err = uv_async_init(uv_default_loop(), &(l->async), (uv_async_cb) fuse3_dispatch);
  assert(err >= 0);
  uv_unref((uv_handle_t *) &(l->async));
  uv_sem_init(&(l->sem), 0);
  l->async.data = l;
  ft->async.data = l;
  l->fuse = ft;
  uv_sem_post(&(ft->sem));
}

/*
 * libfuse's loop starts and ends threads as the load changes (it keeps at
 * most 10 idle). A thread's locals, with their uv_async handle on the event
 * loop, go back to a free list when it ends and serve the next thread: a
 * new block per thread would add a handle to the event loop each time, and
 * libuv looks at every async handle on every wake-up.
 */
static fuse3_locals_t *free_locals[1024];
static int free_locals_count = 0;
static uv_mutex_t free_locals_mut;

static void release_thread_locals (void *data) {
  uv_mutex_lock(&free_locals_mut);
  if (free_locals_count < 1024) free_locals[free_locals_count++] = (fuse3_locals_t *) data;
  uv_mutex_unlock(&free_locals_mut);
}

static fuse3_locals_t* get_thread_locals () {
  void *data = pthread_getspecific(thread_locals_key);
  if (data != NULL) return (fuse3_locals_t *) data;

  struct fuse_context *ctx = fuse_get_context();
  fuse3_thread_t *ft = (fuse3_thread_t *) ctx->private_data;
  fuse3_locals_t *l = NULL;

  uv_mutex_lock(&free_locals_mut);
  for (int i = free_locals_count - 1; i >= 0; i--) {
    if (free_locals[i]->fuse == ft) {
      l = free_locals[i];
      free_locals[i] = free_locals[--free_locals_count];
      break;
    }
  }
  uv_mutex_unlock(&free_locals_mut);

  if (l == NULL) {
    uv_mutex_lock(&(ft->mut));
    ft->async.data = ft;
    uv_async_send(&(ft->async));
    uv_sem_wait(&(ft->sem));
    l = (fuse3_locals_t*) ft->async.data;
    uv_mutex_unlock(&(ft->mut));
  }
  pthread_setspecific(thread_locals_key, (void *) l);
  return l;
}

static void* start_fuse_thread (void *data) {
  fuse3_thread_t *ft = (fuse3_thread_t *) data;
  fuse_loop_mt(ft->fuse, 0);
  forget_mount_places(ft);
  fuse_unmount(ft->fuse);
  fuse_destroy(ft->fuse);
  return NULL;
}

/* fuse3_mount(mnt, opts, thread, ctx, malloc, handlers, implemented) */
NAPI_METHOD(fuse3_mount) {
  NAPI_ARGV(7)
  NAPI_ARGV_UTF8(mnt, 4096, 0);
  NAPI_ARGV_UTF8(mntopts, 4096, 1);
  NAPI_ARGV_BUFFER_CAST(fuse3_thread_t *, ft, 2);
  napi_create_reference(env, argv[3], 1, &(ft->ctx));
  napi_create_reference(env, argv[4], 1, &(ft->malloc));
  napi_value handlers = argv[5];
  NAPI_ARGV_BUFFER_CAST(uint32_t *, implemented, 6)

  for (int i = 0; i < OP_COUNT; i++) {
    ft->handlers[i] = NULL;
    ft->implemented[i] = implemented[i] != 0;
  }
  NAPI_FOR_EACH(handlers, handler) {
    if (i < OP_COUNT) napi_create_reference(env, handler, 1, &ft->handlers[i]);
  }
  ft->env = env;

  struct fuse_operations ops = { };
  int *has = ft->implemented;
  if (has[op_truncate] || has[op_ftruncate]) ops.truncate = fuse3_truncate_any;
  if (has[op_getattr]) ops.getattr = fuse3_getattr;
  if (has[op_flush]) ops.flush = fuse3_flush;
  if (has[op_fsync]) ops.fsync = fuse3_fsync;
  if (has[op_readdir]) ops.readdir = fuse3_readdir;
  if (has[op_readlink]) ops.readlink = fuse3_readlink;
  if (has[op_chown]) ops.chown = fuse3_chown;
  if (has[op_chmod]) ops.chmod = fuse3_chmod;
  if (has[op_mknod]) ops.mknod = fuse3_mknod;
  if (has[op_statfs]) ops.statfs = fuse3_statfs;
  if (has[op_open]) ops.open = fuse3_open;
  if (has[op_read]) ops.read = fuse3_read;
  if (has[op_write]) ops.write = fuse3_write;
  if (has[op_release]) ops.release = fuse3_release;
  if (has[op_create]) ops.create = fuse3_create;
  if (has[op_utimens]) ops.utimens = fuse3_utimens;
  if (has[op_unlink]) ops.unlink = fuse3_unlink;
  if (has[op_rename]) ops.rename = fuse3_rename_flags;
  if (has[op_link]) ops.link = fuse3_link;
  if (has[op_symlink]) ops.symlink = fuse3_symlink;
  if (has[op_mkdir]) ops.mkdir = fuse3_mkdir;
  if (has[op_rmdir]) ops.rmdir = fuse3_rmdir;
  ops.init = fuse3_init;

  int _argc = strlen(mntopts) > 2 ? 2 : 1;
  char *_argv[] = { (char *) "shoal", (char *) mntopts };
  struct fuse_args args = FUSE_ARGS_INIT(_argc, _argv);

  struct fuse *fuse = fuse_new(&args, &ops, sizeof(struct fuse_operations), ft);
  if (fuse == NULL) {
    napi_throw_error(env, NULL, "libfuse3 refused the mount options");
    return NULL;
  }
  if (fuse_mount(fuse, mnt) != 0) {
    fuse_destroy(fuse);
    napi_throw_error(env, NULL, "libfuse3 could not mount (see its message on stderr)");
    return NULL;
  }
#ifdef FUSE3_REQUEST_OPCODES
  /* the same device, read through request_read (closed at the unmount, as before) */
  struct fuse_session *se = fuse_get_session(fuse);
  if (fuse_session_custom_io(se, &request_io, fuse_session_fd(se)) != 0) {
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    napi_throw_error(env, NULL, "libfuse3 refused the mount's reads of its requests");
    return NULL;
  }
#endif

  uv_mutex_init(&(ft->mut));
  uv_sem_init(&(ft->sem), 0);
  snprintf(ft->mnt, sizeof(ft->mnt), "%s", mnt);
  ft->fuse = fuse;
  ft->mounted++;

  int err = uv_async_init(uv_default_loop(), &(ft->async), (uv_async_cb) fuse3_async_init);
  if (err < 0) {
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    napi_throw_error(env, NULL, "uv_async_init failed");
    return NULL;
  }
  pthread_create(&(ft->thread), NULL, start_fuse_thread, ft);
  return NULL;
}

/* fuse3_unmount(mnt, thread): detach the mount (MNT_DETACH: a busy mount goes
 * at once, its open files keep being served) and let the event loop exit.
 * Returns 0 or a negative errno (EPERM when not root: fusermount3 then). */
NAPI_METHOD(fuse3_unmount) {
  NAPI_ARGV(2)
  NAPI_ARGV_UTF8(mnt, 4096, 0);
  NAPI_ARGV_BUFFER_CAST(fuse3_thread_t *, ft, 1);
  int res = umount2(mnt, MNT_DETACH) == 0 ? 0 : -errno;
  if (res == 0 && ft != NULL && ft->mounted > 0) {
    uv_unref((uv_handle_t *) &(ft->async));
    ft->mounted--;
  }
  NAPI_RETURN_INT32(res)
}

/* What the kernel granted at init: { maxWrite, maxRead, maxReadahead, protoMinor }. */
NAPI_METHOD(fuse3_conn_info) {
  NAPI_ARGV(1)
  NAPI_ARGV_BUFFER_CAST(fuse3_thread_t *, ft, 0);
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_uint32(env, ft->max_write, &v);
  napi_set_named_property(env, out, "maxWrite", v);
  napi_create_uint32(env, ft->max_read, &v);
  napi_set_named_property(env, out, "maxRead", v);
  napi_create_uint32(env, ft->max_readahead, &v);
  napi_set_named_property(env, out, "maxReadahead", v);
  napi_create_uint32(env, ft->proto_minor, &v);
  napi_set_named_property(env, out, "protoMinor", v);
  return out;
}

/* fuse3_read_counts(thread): [records, bytes, refused] of the mount's reads from pack records (records.h) */
NAPI_METHOD(fuse3_read_counts) {
  NAPI_ARGV(1)
  NAPI_ARGV_BUFFER_CAST(fuse3_thread_t *, ft, 0);
  uint64_t values[3] = {
    __atomic_load_n(&ft->read_counts.records, __ATOMIC_RELAXED),
    __atomic_load_n(&ft->read_counts.bytes, __ATOMIC_RELAXED),
    __atomic_load_n(&ft->read_counts.refused, __ATOMIC_RELAXED)
  };
  napi_value out, v;
  napi_create_array_with_length(env, 3, &out);
  for (uint32_t i = 0; i < 3; i++) {
    napi_create_double(env, (double) values[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

NAPI_INIT() {
  pthread_key_create(&(thread_locals_key), release_thread_locals);
  uv_mutex_init(&free_locals_mut);
  records_init();

  NAPI_EXPORT_SIZEOF(fuse3_thread_t)
  NAPI_EXPORT_UINT32(OP_COUNT)
  NAPI_EXPORT_FUNCTION(fuse3_mount)
  NAPI_EXPORT_FUNCTION(fuse3_unmount)
  NAPI_EXPORT_FUNCTION(fuse3_conn_info)
  NAPI_EXPORT_FUNCTION(fuse3_read_counts)

  NAPI_EXPORT_FUNCTION(fuse3_signal_init)
  NAPI_EXPORT_FUNCTION(fuse3_signal_statfs)
  NAPI_EXPORT_FUNCTION(fuse3_signal_getattr)
  NAPI_EXPORT_FUNCTION(fuse3_signal_flush)
  NAPI_EXPORT_FUNCTION(fuse3_signal_fsync)
  NAPI_EXPORT_FUNCTION(fuse3_signal_readdir)
  NAPI_EXPORT_FUNCTION(fuse3_signal_truncate)
  NAPI_EXPORT_FUNCTION(fuse3_signal_ftruncate)
  NAPI_EXPORT_FUNCTION(fuse3_signal_utimens)
  NAPI_EXPORT_FUNCTION(fuse3_signal_readlink)
  NAPI_EXPORT_FUNCTION(fuse3_signal_chown)
  NAPI_EXPORT_FUNCTION(fuse3_signal_chmod)
  NAPI_EXPORT_FUNCTION(fuse3_signal_mknod)
  NAPI_EXPORT_FUNCTION(fuse3_signal_open)
  NAPI_EXPORT_FUNCTION(fuse3_signal_read)
  NAPI_EXPORT_FUNCTION(fuse3_signal_read_places)
  NAPI_EXPORT_UINT32(FUSE3_MAX_PLACES)
  NAPI_EXPORT_UINT32(FUSE3_MAX_MULTIHASH)
  NAPI_EXPORT_FUNCTION(fuse3_signal_write)
  NAPI_EXPORT_FUNCTION(fuse3_signal_release)
  NAPI_EXPORT_FUNCTION(fuse3_signal_create)
  NAPI_EXPORT_FUNCTION(fuse3_signal_unlink)
  NAPI_EXPORT_FUNCTION(fuse3_signal_rename)
  NAPI_EXPORT_FUNCTION(fuse3_signal_link)
  NAPI_EXPORT_FUNCTION(fuse3_signal_symlink)
  NAPI_EXPORT_FUNCTION(fuse3_signal_mkdir)
  NAPI_EXPORT_FUNCTION(fuse3_signal_rmdir)

  NAPI_EXPORT_UINT32(op_init)
  NAPI_EXPORT_UINT32(op_statfs)
  NAPI_EXPORT_UINT32(op_getattr)
  NAPI_EXPORT_UINT32(op_flush)
  NAPI_EXPORT_UINT32(op_fsync)
  NAPI_EXPORT_UINT32(op_readdir)
  NAPI_EXPORT_UINT32(op_truncate)
  NAPI_EXPORT_UINT32(op_ftruncate)
  NAPI_EXPORT_UINT32(op_utimens)
  NAPI_EXPORT_UINT32(op_readlink)
  NAPI_EXPORT_UINT32(op_chown)
  NAPI_EXPORT_UINT32(op_chmod)
  NAPI_EXPORT_UINT32(op_mknod)
  NAPI_EXPORT_UINT32(op_open)
  NAPI_EXPORT_UINT32(op_read)
  NAPI_EXPORT_UINT32(op_write)
  NAPI_EXPORT_UINT32(op_release)
  NAPI_EXPORT_UINT32(op_create)
  NAPI_EXPORT_UINT32(op_unlink)
  NAPI_EXPORT_UINT32(op_rename)
  NAPI_EXPORT_UINT32(op_link)
  NAPI_EXPORT_UINT32(op_symlink)
  NAPI_EXPORT_UINT32(op_mkdir)
  NAPI_EXPORT_UINT32(op_rmdir)
}
