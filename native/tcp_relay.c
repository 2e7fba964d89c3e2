// Remora's kernel-side TCP relay: copies bytes between the two plaintext sockets of a tcp_proxy connection on a
// thread of its own, with read(2)/write(2) driven by epoll, so that relaying a message costs two system calls and
// no JavaScript. Node's stream write path (a WriteWrap, the Writable state machine and a tick per write) is most
// of the user-space time of a relayed message; the kernel's share is the same either way.
//
// A pair relays both directions until each has seen end of stream and delivered everything (half-closes are
// passed on with shutdown(SHUT_WR) as they come), or until a read or write fails. Then it leaves the epoll set
// and JavaScript is told (a thread-safe function), and it closes the sockets. Reads go through one scratch buffer
// of the relay thread; only bytes a destination does not take at once are kept (a pending buffer per direction),
// and the source is not read again until they are delivered: backpressure is the kernel's socket buffers.

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "tcp_relay.h"

#define SCRATCH (64 * 1024)
#define MAX_EVENTS 64
// Reads per readiness event before other pairs get their turn (fairness under bulk transfers).
#define READS_PER_EVENT 16

struct direction {
  int from, to;
  char* pending;  // bytes read from `from` that `to` has not taken yet
  size_t pending_len, pending_off;
  int eof;        // `from` has ended
  int shut;       // the end was passed on to `to`
  uint64_t bytes;
};

struct pair {
  uint32_t id;
  int fds[2];  // 0: downstream, 1: upstream
  struct direction dir[2];  // dir[0]: fds[0] -> fds[1]; dir[1]: fds[1] -> fds[0]
  int done;
  int error;  // errno of the failure, 0 when both directions ended cleanly
  uint64_t last_activity_ms;
  uint32_t interest[2];  // 0: not in the epoll set (a socket can report a hang-up even when waiting for nothing)
  struct pair* next;  // in its hash bucket
};

#define BUCKETS 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pair* table[BUCKETS];
static uint32_t next_id = 1;
static int epfd = -1;
static pthread_t thread;
static napi_threadsafe_function on_done = NULL;
static uint32_t active = 0;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct pair* find(uint32_t id) {
  for (struct pair* p = table[id % BUCKETS]; p; p = p->next)
    if (p->id == id) return p;
  return NULL;
}

static void unlink_pair(struct pair* gone) {
  struct pair** at = &table[gone->id % BUCKETS];
  while (*at && *at != gone) at = &(*at)->next;
  if (*at) *at = gone->next;
}

static void free_pair(struct pair* p) {
  free(p->dir[0].pending);
  free(p->dir[1].pending);
  free(p);
}

// What a socket of the pair waits for: readable while its outgoing direction can take more, writable while the
// incoming one has bytes pending for it.
static uint32_t wanted(const struct pair* p, int side) {
  const struct direction* out = &p->dir[side];
  const struct direction* in = &p->dir[1 - side];
  uint32_t ev = 0;
  if (!out->eof && out->pending_len == 0) ev |= EPOLLIN | EPOLLRDHUP;
  if (in->pending_len > 0) ev |= EPOLLOUT;
  return ev;
}

// Returns 0 or the errno of a failed epoll_ctl.
static int update_interest(struct pair* p) {
  for (int side = 0; side < 2; side++) {
    uint32_t ev = wanted(p, side);
    uint32_t was = p->interest[side];
    if (ev == was) continue;
    struct epoll_event e = {.events = ev, .data.u64 = ((uint64_t)p->id << 1) | (uint64_t)side};
    int op = ev == 0 ? EPOLL_CTL_DEL : was == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(epfd, op, p->fds[side], &e) != 0) return errno;
    p->interest[side] = ev;
  }
  return 0;
}

static void leave_epoll(struct pair* p) {
  for (int side = 0; side < 2; side++) {
    if (p->interest[side] != 0) epoll_ctl(epfd, EPOLL_CTL_DEL, p->fds[side], NULL);
    p->interest[side] = 0;
  }
}

static void finish(struct pair* p, int err) {
  if (p->done) return;
  p->done = 1;
  p->error = err;
  leave_epoll(p);
  // The id travels as the pointer itself: no malloc on this thread, so glibc never makes it an arena of its own.
  napi_call_threadsafe_function(on_done, (void*)(uintptr_t)p->id, napi_tsfn_nonblocking);
}

// Passes the end of stream on once every byte before it was delivered.
static void pass_end(struct direction* d) {
  if (d->eof && d->pending_len == 0 && !d->shut) {
    shutdown(d->to, SHUT_WR);
    d->shut = 1;
  }
}

// Delivers pending bytes; 0 when all went (or none were waiting), EAGAIN when some wait, else the write's errno.
static int flush(struct direction* d) {
  while (d->pending_len > 0) {
    ssize_t w = write(d->to, d->pending + d->pending_off, d->pending_len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    d->pending_off += (size_t)w;
    d->pending_len -= (size_t)w;
  }
  free(d->pending);
  d->pending = NULL;
  d->pending_off = 0;
  pass_end(d);
  return 0;
}

// Reads what `from` has and writes it on; 0 or the errno that ends the pair.
static int pump(struct pair* p, struct direction* d, char* scratch) {
  for (int i = 0; i < READS_PER_EVENT && !d->eof && d->pending_len == 0; i++) {
    ssize_t n = read(d->from, scratch, SCRATCH);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return errno;
    }
    if (n == 0) {
      d->eof = 1;
      pass_end(d);
      return 0;
    }
    d->bytes += (uint64_t)n;
    p->last_activity_ms = now_ms();
    size_t off = 0;
    while (off < (size_t)n) {
      ssize_t w = write(d->to, scratch + off, (size_t)n - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
        d->pending = malloc((size_t)n - off);
        if (!d->pending) return ENOMEM;
        memcpy(d->pending, scratch + off, (size_t)n - off);
        d->pending_len = (size_t)n - off;
        return 0;
      }
      off += (size_t)w;
    }
    if ((size_t)n < SCRATCH) return 0;  // the socket had no more
  }
  return 0;
}

static void* run(void* arg) {
  (void)arg;
  static char scratch[SCRATCH];
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n; i++) {
      uint32_t id = (uint32_t)(events[i].data.u64 >> 1);
      int side = (int)(events[i].data.u64 & 1);
      struct pair* p = find(id);
      if (!p || p->done) continue;  // stopped after epoll_wait returned
      uint32_t ev = events[i].events;
      int err = 0;
      if (ev & EPOLLOUT) {
        struct direction* in = &p->dir[1 - side];
        err = flush(in);
        if (err == EAGAIN || err == EWOULDBLOCK) err = 0;
      }
      if (!err && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        struct direction* out = &p->dir[side];
        if (out->pending_len == 0 && !out->eof) err = pump(p, out, scratch);
        else if (ev & EPOLLERR) {
          int so = 0;
          socklen_t len = sizeof so;
          getsockopt(p->fds[side], SOL_SOCKET, SO_ERROR, &so, &len);
          err = so ? so : EPIPE;
        }
      }
      if (!err && p->dir[0].shut && p->dir[1].shut) finish(p, 0);
      else if (err || (err = update_interest(p)) != 0) finish(p, err);
    }
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

// Runs on the JavaScript thread for each finished pair: calls the done callback with the pair's id.
static void call_done(napi_env env, napi_value js_cb, void* context, void* data) {
  (void)context;
  if (env != NULL && js_cb != NULL) {
    napi_value undefined, arg;
    napi_get_undefined(env, &undefined);
    napi_create_uint32(env, (uint32_t)(uintptr_t)data, &arg);
    napi_call_function(env, undefined, js_cb, 1, &arg, NULL);
  }
}

static napi_value throw_code(napi_env env, const char* code, const char* msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

// relayInit(onDone): starts the relay thread once; onDone(id) is called when a pair has finished.
static napi_value RelayInit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (on_done != NULL) return NULL;
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return throw_code(env, "ERR_INVALID_ARG", "relayInit(onDone): expected a function");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return throw_code(env, "ERR_RELAY", strerror(errno));
  napi_value name;
  napi_create_string_utf8(env, "remora tcp relay", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_done, &on_done) !=
      napi_ok)
    return throw_code(env, "ERR_RELAY", "cannot create the relay's callback");
  napi_unref_threadsafe_function(env, on_done);
  if (pthread_create(&thread, NULL, run, NULL) != 0) return throw_code(env, "ERR_RELAY", strerror(errno));
  pthread_detach(thread);
  return NULL;
}

static int fd_arg(napi_env env, napi_value v) {
  int32_t fd;
  if (napi_get_value_int32(env, v, &fd) != napi_ok) return -1;
  return fd;
}

// relayStart(downstreamFd, upstreamFd) -> id. The sockets must be non-blocking and no longer read by libuv.
static napi_value RelayStart(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (on_done == NULL) return throw_code(env, "ERR_RELAY", "relayInit was not called");
  int a = argc >= 2 ? fd_arg(env, argv[0]) : -1;
  int b = argc >= 2 ? fd_arg(env, argv[1]) : -1;
  if (a < 0 || b < 0) return throw_code(env, "ERR_INVALID_ARG", "relayStart(fd, fd): expected two file descriptors");
  struct pair* p = calloc(1, sizeof *p);
  if (!p) return throw_code(env, "ERR_RELAY", "out of memory");
  p->fds[0] = a;
  p->fds[1] = b;
  p->dir[0].from = a;
  p->dir[0].to = b;
  p->dir[1].from = b;
  p->dir[1].to = a;
  p->last_activity_ms = now_ms();
  pthread_mutex_lock(&lock);
  do p->id = next_id++; while (p->id == 0 || find(p->id));
  p->next = table[p->id % BUCKETS];
  table[p->id % BUCKETS] = p;
  int err = update_interest(p);
  if (err) {
    leave_epoll(p);
    unlink_pair(p);
    free_pair(p);
  } else if (active++ == 0) {
    napi_ref_threadsafe_function(env, on_done);
  }
  uint32_t id = p->id;
  pthread_mutex_unlock(&lock);
  if (err) return throw_code(env, "ERR_RELAY", strerror(err));
  napi_value result;
  napi_create_uint32(env, id, &result);
  return result;
}

static uint32_t id_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t id = 0;
  if (argc >= 1) napi_get_value_uint32(env, argv[0], &id);
  return id;
}

// relayInfo(id) -> [bytes downstream->upstream, bytes upstream->downstream, ms since the last read, errno, done]
// or undefined for an unknown id.
static napi_value RelayInfo(napi_env env, napi_callback_info info) {
  uint32_t id = id_arg(env, info);
  pthread_mutex_lock(&lock);
  struct pair* p = find(id);
  double v[5] = {0};
  int found = p != NULL;
  if (p) {
    v[0] = (double)p->dir[0].bytes;
    v[1] = (double)p->dir[1].bytes;
    v[2] = (double)(now_ms() - p->last_activity_ms);
    v[3] = p->error;
    v[4] = p->done;
  }
  pthread_mutex_unlock(&lock);
  if (!found) return NULL;
  napi_value arr;
  napi_create_array_with_length(env, 5, &arr);
  for (uint32_t i = 0; i < 5; i++) {
    napi_value x;
    napi_create_double(env, v[i], &x);
    napi_set_element(env, arr, i, x);
  }
  return arr;
}

// relayRelease(id): stops the pair if it still runs (no done callback then) and forgets it. The sockets are the
// caller's to close; the relay thread does not touch them after this returns.
static napi_value RelayRelease(napi_env env, napi_callback_info info) {
  uint32_t id = id_arg(env, info);
  pthread_mutex_lock(&lock);
  struct pair* p = find(id);
  if (p) {
    p->done = 1;
    leave_epoll(p);
    unlink_pair(p);
    free_pair(p);
    if (--active == 0) napi_unref_threadsafe_function(env, on_done);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

void tcp_relay_init(napi_env env, napi_value exports) {
  static const struct { const char* name; napi_callback cb; } fns[] = {
      {"relayInit", RelayInit},
      {"relayStart", RelayStart},
      {"relayInfo", RelayInfo},
      {"relayRelease", RelayRelease},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}
