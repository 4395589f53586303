/*
 * Cheap benchmark targets in one single-threaded epoll process, so a target server does
 * not eat the CPU the probers are measured on (the 2-core bench machine).
 *
 *   HTTP/1.1  answers every request with "HTTP/1.1 200 OK", Content-Length 2, body "ok";
 *             keep-alive by default (several requests per connection, pipelined ones
 *             too), closes after the response for HTTP/1.0 or "Connection: close";
 *             request bodies (Content-Length) are read and discarded.
 *   TCP       accept and close.
 *   DNS/UDP   answers any query with NOERROR, AA, the question and, for type A or ANY,
 *             one A record 127.0.0.1 (TTL 300); EDNS and other sections are dropped.
 *
 * Usage: target [http_port tcp_port dns_port] (0 or absent = any free port), all on
 * 127.0.0.1. Prints {"http":N,"tcp":N,"dns":N} on stdout once listening. Runs until killed.
 * Build: gcc -O2 -o target target.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUF 8192

enum kind { K_HTTP_LISTEN = 1, K_TCP_LISTEN, K_DNS_UDP, K_HTTP_CONN };

struct conn {
  int kind;
  int fd;
  size_t len;       /* bytes in buf */
  size_t skip;      /* request body bytes still to discard */
  char buf[BUF];
};

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
static const char RESPONSE_CLOSE[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

static int ep;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int listener(int type, int port, int *bound) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) die("listen");
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  *bound = ntohs(a.sin_port);
  return fd;
}

static void watch(struct conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static struct conn *holder(int kind, int fd) {
  struct conn *c = calloc(1, kind == K_HTTP_CONN ? sizeof *c : offsetof(struct conn, buf));
  if (!c) die("calloc");
  c->kind = kind;
  c->fd = fd;
  return c;
}

static void drop(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c);
}

/* Case-insensitive search for `needle` in the header block [h, h+n). */
static const char *header(const char *h, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (strncasecmp(h + i, needle, k) == 0) return h + i + k;
  return NULL;
}

/* Answers every complete request in the buffer; returns 0 to keep the connection, -1 to close. */
static int serve(struct conn *c) {
  size_t off = 0;
  for (;;) {
    if (c->skip) {
      size_t n = c->len - off < c->skip ? c->len - off : c->skip;
      off += n;
      c->skip -= n;
      if (c->skip) break;
    }
    char *start = c->buf + off;
    size_t avail = c->len - off;
    char *end = memmem(start, avail, "\r\n\r\n", 4);
    if (!end) break;
    size_t hlen = (size_t)(end - start) + 4;
    const char *cl = header(start, hlen, "\r\ncontent-length:");
    const char *line_end = memchr(start, '\r', hlen);
    int http10 = line_end && line_end - start >= 8 && memcmp(line_end - 8, "HTTP/1.0", 8) == 0;
    const char *conn = header(start, hlen, "\r\nconnection:");
    int close_after = http10;
    if (conn) {
      while (*conn == ' ') conn++;
      if (strncasecmp(conn, "close", 5) == 0) close_after = 1;
      else if (strncasecmp(conn, "keep-alive", 10) == 0) close_after = 0;
    }
    off += hlen;
    c->skip = cl ? strtoul(cl, NULL, 10) : 0;
    const char *r = close_after ? RESPONSE_CLOSE : RESPONSE;
    size_t rlen = close_after ? sizeof RESPONSE_CLOSE - 1 : sizeof RESPONSE - 1;
    /* A 100-byte answer fits an empty loopback send buffer; a short write = a stuck client. */
    if (write(c->fd, r, rlen) != (ssize_t)rlen) return -1;
    if (close_after) return -1;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
  if (c->len == BUF) return -1; /* header block larger than the buffer */
  return 0;
}

static void on_http(struct conn *c) {
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->len, BUF - c->len);
    if (n > 0) {
      c->len += (size_t)n;
      if (serve(c) < 0) {
        drop(c);
        return;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    drop(c); /* EOF or error */
    return;
  }
}

static void on_accept(struct conn *l) {
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN, or a connection reset before accept */
    if (l->kind == K_TCP_LISTEN) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    watch(holder(K_HTTP_CONN, fd), EPOLLIN | EPOLLRDHUP);
  }
}

static void on_dns(int fd) {
  unsigned char q[512], r[600];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) return;
    if (n < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1) continue; /* not one query */
    size_t i = 12;
    while (i < (size_t)n && q[i] != 0 && q[i] < 64) i += q[i] + 1u;
    if (i >= (size_t)n || q[i] != 0 || i + 5 > (size_t)n) continue;
    size_t qend = i + 5; /* root label + QTYPE + QCLASS */
    unsigned qtype = (unsigned)q[i + 1] << 8 | q[i + 2];
    memcpy(r, q, qend);
    r[2] = 0x84 | (q[2] & 0x79); /* QR, opcode, AA, RD copied */
    r[3] = 0x80;                 /* RA, NOERROR */
    r[6] = r[8] = r[9] = r[10] = r[11] = 0;
    r[7] = 0;
    size_t len = qend;
    if (qtype == 1 || qtype == 255) {
      static const unsigned char a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 127, 0, 0, 1};
      memcpy(r + len, a, sizeof a);
      len += sizeof a;
      r[7] = 1;
    }
    sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
  }
}

int main(int argc, char **argv) {
  int want[3] = {0, 0, 0}, got[3];
  for (int i = 0; i < 3 && i + 1 < argc; i++) want[i] = atoi(argv[i + 1]);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  watch(holder(K_HTTP_LISTEN, listener(SOCK_STREAM, want[0], &got[0])), EPOLLIN);
  watch(holder(K_TCP_LISTEN, listener(SOCK_STREAM, want[1], &got[1])), EPOLLIN);
  watch(holder(K_DNS_UDP, listener(SOCK_DGRAM, want[2], &got[2])), EPOLLIN);
  printf("{\"http\":%d,\"tcp\":%d,\"dns\":%d}\n", got[0], got[1], got[2]);
  fflush(stdout);
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      switch (c->kind) {
      case K_HTTP_LISTEN:
      case K_TCP_LISTEN: on_accept(c); break;
      case K_DNS_UDP: on_dns(c->fd); break;
      default: on_http(c); break;
      }
    }
  }
}
