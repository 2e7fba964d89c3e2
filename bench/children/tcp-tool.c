// The TCP scenarios' echo server and round-trip load client, in C: a Node client and echo server spend some 40 µs
// of the load core per round trip, more than a proxy on its own core, so they and not the proxy set the pace and
// every target measured about the same. Here a round trip costs the load core a few µs beside the kernel's share.
//
//   tcp-tool serve PORT                                  echo everything back, on 127.0.0.1
//   tcp-tool load PORT CONNECTIONS SECONDS MESSAGE_BYTES  round trips; prints one JSON line of results
//
// Built by the bench with the system's C compiler (bench/tcp-tool.ts); without one the Node versions run.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define EVENTS 128

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// An echo connection: bytes read that the peer has not taken back yet wait here, and reading stops meanwhile.
struct echo_conn {
  int fd;
  char* pending;
  size_t len, off;
};

static void echo_close(int ep, struct echo_conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->pending);
  free(c);
}

// Writes what is pending; 1 when all of it went, 0 when the socket is full, -1 on error.
static int echo_flush(struct echo_conn* c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->pending + c->off, c->len - c->off);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->off += (size_t)n;
  }
  c->len = c->off = 0;
  return 1;
}

static _Noreturn void serve(int port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
  if (listen(lfd, 1024) < 0) die("listen");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("echo listening on %d\n", port);
  fflush(stdout);
  static char buf[BUF];
  struct epoll_event events[EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, EVENTS, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct echo_conn* c = events[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          nodelay(fd);
          struct echo_conn* nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      if (c->len > 0) {
        int r = echo_flush(c);
        if (r < 0) {
          echo_close(ep, c);
          continue;
        }
        if (r == 0) continue;
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
      }
      ssize_t got = read(c->fd, buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EAGAIN)) {
        echo_close(ep, c);
        continue;
      }
      if (got < 0) continue;
      ssize_t put = write(c->fd, buf, (size_t)got);
      if (put < 0 && errno != EAGAIN) {
        echo_close(ep, c);
        continue;
      }
      if (put < got) {
        size_t rest = (size_t)got - (size_t)(put < 0 ? 0 : put);
        c->pending = realloc(c->pending, rest);
        memcpy(c->pending, buf + (got - (ssize_t)rest), rest);
        c->len = rest;
        c->off = 0;
        struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
      }
    }
  }
}

struct load_conn {
  int fd;
  size_t pending;  // bytes of the current message not echoed yet
  uint64_t sent_at;
  int done;
};

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static int load(int port, int conns, double seconds, size_t size) {
  char* message = malloc(size);
  memset(message, 'a', size);
  static char buf[BUF];
  int ep = epoll_create1(0);
  struct load_conn* cs = calloc((size_t)conns, sizeof *cs);
  size_t cap = 1 << 20, count = 0;
  uint64_t* samples = malloc(cap * sizeof *samples);
  uint64_t errors = 0;
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) < 0) die("connect");
    nodelay(fd);
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), end = start;
  for (int i = 0; i < conns; i++) {
    cs[i].pending = size;
    cs[i].sent_at = now_ns();
    if (write(cs[i].fd, message, size) != (ssize_t)size) die("write");
  }
  int open = conns;
  struct epoll_event events[EVENTS];
  // A proxy that stops echoing must not hang the run.
  uint64_t give_up = deadline + 5000000000u;
  while (open > 0 && now_ns() < give_up) {
    int n = epoll_wait(ep, events, EVENTS, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct load_conn* c = events[i].data.ptr;
      if (c->done) continue;
      ssize_t got = read(c->fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        errors++;
        c->done = 1;
        open--;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      c->pending = (size_t)got >= c->pending ? 0 : c->pending - (size_t)got;
      if (c->pending > 0) continue;
      uint64_t now = now_ns();
      if (count == cap) samples = realloc(samples, (cap *= 2) * sizeof *samples);
      samples[count++] = now - c->sent_at;
      if (now > end) end = now;
      if (now >= deadline) {
        c->done = 1;
        open--;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      c->pending = size;
      c->sent_at = now;
      if (write(c->fd, message, size) != (ssize_t)size) {
        errors++;
        c->done = 1;
        open--;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  for (int i = 0; i < conns; i++) close(cs[i].fd);
  qsort(samples, count, sizeof *samples, cmp_u64);
  uint64_t p50 = count ? samples[count / 2] : 0, p99 = count ? samples[(count * 99) / 100] : 0;
  printf("{\"count\":%zu,\"seconds\":%.6f,\"p50Us\":%llu,\"p99Us\":%llu,\"errors\":%llu}\n", count,
         (double)(end - start) / 1e9, (unsigned long long)((p50 + 500) / 1000),
         (unsigned long long)((p99 + 500) / 1000), (unsigned long long)errors);
  return 0;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "serve") == 0) serve(atoi(argv[2]));
  if (argc == 6 && strcmp(argv[1], "load") == 0)
    return load(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), (size_t)atoi(argv[5]));
  fprintf(stderr, "usage: tcp-tool serve PORT | tcp-tool load PORT CONNECTIONS SECONDS MESSAGE_BYTES\n");
  return 2;
}
