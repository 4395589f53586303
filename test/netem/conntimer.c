/*
 * conntimer — the truth for connect time: a connect() timed with CLOCK_MONOTONIC from
 * just before the call until it has completed, one line of ns per connect (-1 if it
 * failed).
 *   conntimer [--spin] ADDR PORT N [GAP_MS]   N connects, GAP_MS apart
 *   conntimer [--spin] ADDR PORT -            one connect per line read from stdin (one
 *                                             process for a run, so it can be paired
 *                                             with a probe connect by connect)
 * Blocking connect() by default. --spin: a non-blocking connect() polled with a zero
 * timeout until it completes, so the end is read when the kernel finishes the handshake
 * instead of after the wake-up of a blocked thread (tens of µs on 2 shared vCPUs, more
 * under load: time the kernel's SYN_SENT → ESTABLISHED figure does not contain).
 * Runs SCHED_FIFO when allowed (root) so other processes' CPU use does not stretch it:
 * priority 30 when blocking (its wake-up preempts the delayer), 10 when spinning (the
 * delayer, at 20, must preempt it to release the SYN-ACK it waits for).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int spin;

static void one(const struct sockaddr_in *sa) {
  int fd = socket(AF_INET, SOCK_STREAM | (spin ? SOCK_NONBLOCK : 0), 0);
  long long t0 = now_ns();
  int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
  if (spin && r < 0 && errno == EINPROGRESS) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    while ((r = poll(&p, 1, 0)) == 0) {}
    int err = 0;
    socklen_t len = sizeof err;
    r = r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 ? 0 : -1;
  }
  long long t1 = now_ns();
  if (r == 0) printf("%lld\n", t1 - t0);
  else printf("-1\n");
  fflush(stdout);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--spin")) { spin = 1; argv++; argc--; }
  if (argc < 4) { fprintf(stderr, "usage: conntimer [--spin] ADDR PORT N|- [GAP_MS]\n"); return 2; }
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  struct sched_param sp = { .sched_priority = spin ? 10 : 30 };
  if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) perror("conntimer: SCHED_FIFO (wake-up latency will follow the machine's load)");
  if (!strcmp(argv[3], "-")) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) one(&sa);
    return 0;
  }
  int n = atoi(argv[3]);
  int gap_ms = argc > 4 ? atoi(argv[4]) : 10;
  for (int i = 0; i < n; i++) {
    one(&sa);
    struct timespec gap = { gap_ms / 1000, (gap_ms % 1000) * 1000000L };
    nanosleep(&gap, NULL);
  }
  return 0;
}
