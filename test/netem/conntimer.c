/*
 * conntimer — the truth for connect time: a blocking connect() timed with
 * CLOCK_MONOTONIC around the syscall, N times, one line of ns per connect.
 *   conntimer ADDR PORT N [GAP_MS]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: conntimer ADDR PORT N [GAP_MS]\n"); return 2; }
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  int n = atoi(argv[3]);
  int gap_ms = argc > 4 ? atoi(argv[4]) : 10;
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    long long t0 = now_ns();
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    long long t1 = now_ns();
    if (r == 0) printf("%lld\n", t1 - t0);
    else printf("-1\n");
    fflush(stdout);
    close(fd);
    struct timespec gap = { gap_ms / 1000, (gap_ms % 1000) * 1000000L };
    nanosleep(&gap, NULL);
  }
  return 0;
}
