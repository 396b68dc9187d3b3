// The floor with no runtime: a transparent TCP relay on 127.0.0.1 that does
// what libuv does for a Node server's sockets and nothing else. One epoll loop,
// level-triggered; a ready socket is read once into one shared 64 KiB buffer
// (libuv reads once per readiness when the read does not fill the buffer) and
// what was read is written to the other side with one write. TCP_NODELAY on
// both sides, as rtmpd sets it. A write the kernel does not take whole keeps
// its rest and stops reading the side that sent it until the rest is written.
//
// Build: gcc -O2 -Wall -Wextra -o .bench/floor-proxy hack/bench/floor/proxy.c
// Run:   floor-proxy <listen-port> <target-port>
// (make bench BENCH_ARGS="--proxy .bench/floor-proxy" appends the ports; see docs/performance.md,
// "The floor: Node's I/O with no RTMP work").
#define _GNU_SOURCE  // accept4
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUFFER_BYTES 65536
#define MAX_EVENTS 1024

struct side {
  int fd;  // -1 once the pair is closed
  struct side *peer;
  // Bytes read from the peer that this side's socket did not take yet.
  char *pending;
  size_t pending_len;
  size_t pending_off;
};

static int epfd;
static char read_buffer[READ_BUFFER_BYTES];
// Pairs closed during a batch of events: freed after it, since later events of the batch may name them.
static struct side *closed[MAX_EVENTS];
static int closed_count;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

static void watch(struct side *s, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = s};
  if (epoll_ctl(epfd, op, s->fd, &ev) < 0) die("epoll_ctl");
}

// A side is read unless its peer still holds bytes it sent, and waits to write while it holds some itself.
static void rewatch(struct side *s) {
  watch(s, EPOLL_CTL_MOD, (s->pending ? EPOLLOUT : 0) | (s->peer->pending ? 0 : EPOLLIN));
}

static void close_pair(struct side *s) {
  struct side *p = s->peer;
  close(s->fd);  // closing removes the fd from the epoll set
  close(p->fd);
  s->fd = p->fd = -1;
  free(s->pending);
  free(p->pending);
  closed[closed_count++] = s < p ? s : p;  // both sides live in one allocation
}

// Writes what was read from s's peer to s; keeps what s does not take and pauses the peer. -1 when s failed.
static int send_to(struct side *s, const char *bytes, size_t len) {
  ssize_t n = write(s->fd, bytes, len);
  if (n < 0 && errno != EAGAIN) return -1;
  if (n < 0) n = 0;
  if ((size_t)n == len) return 0;
  s->pending = malloc(len - n);
  if (!s->pending) die("malloc");
  memcpy(s->pending, bytes + n, len - n);
  s->pending_len = len - n;
  s->pending_off = 0;
  rewatch(s);
  rewatch(s->peer);
  return 0;
}

// Writes the rest s did not take; once all is written, reads both sides again. -1 when s failed.
static int flush_pending(struct side *s) {
  ssize_t n = write(s->fd, s->pending + s->pending_off, s->pending_len - s->pending_off);
  if (n < 0) return errno == EAGAIN ? 0 : -1;
  s->pending_off += n;
  if (s->pending_off < s->pending_len) return 0;
  free(s->pending);
  s->pending = NULL;
  rewatch(s);
  rewatch(s->peer);
  return 0;
}

static void accept_one(int listener, int target_port) {
  int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
  if (client < 0) return;
  // A blocking connect: on loopback it completes at once, and the bench opens a few hundred a second at most.
  int upstream = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in target = loopback(target_port);
  if (upstream < 0 || connect(upstream, (struct sockaddr *)&target, sizeof target) < 0) {
    perror("connect");
    close(client);
    if (upstream >= 0) close(upstream);
    return;
  }
  if (fcntl(upstream, F_SETFL, O_NONBLOCK) < 0) die("fcntl");
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct side *pair = calloc(2, sizeof *pair);
  if (!pair) die("calloc");
  pair[0] = (struct side){.fd = client, .peer = &pair[1]};
  pair[1] = (struct side){.fd = upstream, .peer = &pair[0]};
  watch(&pair[0], EPOLL_CTL_ADD, EPOLLIN);
  watch(&pair[1], EPOLL_CTL_ADD, EPOLLIN);
}

static void on_ready(struct side *s, unsigned events) {
  if (s->fd < 0) return;
  if (s->pending && (events & EPOLLOUT) && flush_pending(s) < 0) {
    close_pair(s);
    return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || s->peer->pending) return;
  ssize_t n = read(s->fd, read_buffer, sizeof read_buffer);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0 || send_to(s->peer, read_buffer, n) < 0) close_pair(s);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <listen-port> <target-port>\n", argv[0]);
    return 2;
  }
  int target_port = atoi(argv[2]);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = loopback(atoi(argv[1]));
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(listener, 511) < 0) die("listen");
  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");
  struct epoll_event listen_ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &listen_ev) < 0) die("epoll_ctl");
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int ready = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (ready < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < ready; i++) {
      if (events[i].data.ptr == NULL) accept_one(listener, target_port);
      else on_ready(events[i].data.ptr, events[i].events);
    }
    for (int i = 0; i < closed_count; i++) free(closed[i]);
    closed_count = 0;
  }
}
