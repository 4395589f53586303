/*
 * delayer — fixed one-way delay and chosen losses for packets an iptables NFQUEUE rule
 * hands to user space (this kernel has no netem qdisc). Used by the accuracy tests.
 *
 *   delayer --queue N --port P --delay-us D [--drop-first-syn] [--drop-first-data]
 *
 * Packets FROM port P (the server's replies: SYN-ACK, data) and ICMP echo replies are
 * held D µs, FIFO (the delay is fixed, so FIFO is due-time order), then accepted.
 * Packets TO port P are accepted at once, except: --drop-first-syn drops the first SYN of
 * each client (addr, port) — the client's SYN retransmit follows ~1 s later;
 * --drop-first-data drops the first data segment of each client connection — a data
 * retransmit follows (the test's rules queue packets to P only when loss is asked for).
 * Prints "ready" once bound. Single thread: ppoll with ns timeouts, timer slack 1 ns, a
 * short spin for the last 20 µs, so release is within a few µs; SCHED_FIFO (priority 20)
 * when allowed, so its wake-ups, which count in every delayed packet's delay, do not wait
 * behind other processes on a loaded machine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define RING 65536
#define SEEN 8192
struct held { uint32_t id; uint64_t due; };
static struct held ring[RING];
static unsigned head, tail;
static uint64_t delay_ns;
static int port, drop_syn, drop_data;
static uint64_t seen_syn[SEEN], seen_data[SEEN];
static unsigned n_syn, n_data;
static unsigned long dropped, delayed, passed;
static volatile sig_atomic_t stop;
static struct nfq_q_handle *qh;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Returns 1 the first time `key` is seen (and remembers it). */
static int first_time(uint64_t *set, unsigned *n, uint64_t key) {
  unsigned lim = *n < SEEN ? *n : SEEN;
  for (unsigned i = 0; i < lim; i++) if (set[i] == key) return 0;
  set[(*n)++ % SEEN] = key;
  return 1;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  unsigned char *pkt;
  int len = nfq_get_payload(nfa, &pkt);
  int to_server = 0;
  if (len >= (int)sizeof(struct iphdr)) {
    struct iphdr *ip = (struct iphdr *)pkt;
    int ihl = ip->ihl * 4;
    if (ip->protocol == IPPROTO_TCP && len >= ihl + (int)sizeof(struct tcphdr)) {
      struct tcphdr *th = (struct tcphdr *)(pkt + ihl);
      if (ntohs(th->dest) == port) {
        to_server = 1;
        uint64_t client = ((uint64_t)ntohl(ip->saddr) << 16) | ntohs(th->source);
        int payload = ntohs(ip->tot_len) - ihl - th->doff * 4;
        if ((drop_syn && th->syn && !th->ack && first_time(seen_syn, &n_syn, client)) ||
            (drop_data && payload > 0 && first_time(seen_data, &n_data, client))) {
          dropped++;
          return nfq_set_verdict(q, id, NF_DROP, 0, NULL);
        }
      }
    }
  }
  if (to_server || delay_ns == 0) {
    passed++;
    return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
  }
  if (tail - head >= RING) return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
  ring[tail % RING] = (struct held){ id, now_ns() + delay_ns };
  tail++;
  delayed++;
  return 0;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  int qnum = 0;
  long delay_us = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--queue") && i + 1 < argc) qnum = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--delay-us") && i + 1 < argc) delay_us = atol(argv[++i]);
    else if (!strcmp(argv[i], "--drop-first-syn")) drop_syn = 1;
    else if (!strcmp(argv[i], "--drop-first-data")) drop_data = 1;
    else { fprintf(stderr, "usage: delayer --queue N --port P --delay-us D [--drop-first-syn] [--drop-first-data]\n"); return 2; }
  }
  delay_ns = (uint64_t)delay_us * 1000ull;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct sched_param sp = { .sched_priority = 20 };
  if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) perror("delayer: SCHED_FIFO (delay jitter will follow the machine's load)");
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  struct nfq_handle *h = nfq_open();
  if (!h) { perror("nfq_open"); return 1; }
  nfq_unbind_pf(h, AF_INET);
  if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq_bind_pf"); return 1; }
  qh = nfq_create_queue(h, qnum, on_packet, NULL);
  if (!qh) { perror("nfq_create_queue"); return 1; }
  if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 128) < 0) { perror("nfq_set_mode"); return 1; }
  nfq_set_queue_maxlen(qh, RING);
  int fd = nfq_fd(h);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 8 << 20);
  printf("ready\n");
  fflush(stdout);
  char buf[4096] __attribute__((aligned));
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  while (!stop) {
    uint64_t t = now_ns();
    while (head != tail && ring[head % RING].due <= t) {
      nfq_set_verdict(qh, ring[head % RING].id, NF_ACCEPT, 0, NULL);
      head++;
    }
    struct timespec ts = { 0, 100000000 };
    if (head != tail) {
      uint64_t wait = ring[head % RING].due - t;
      if (wait < 20000) { ts.tv_nsec = 0; } /* spin the last 20 µs */
      else { wait -= 20000; ts.tv_sec = wait / 1000000000ull; ts.tv_nsec = wait % 1000000000ull; }
    }
    int r = ppoll(&pfd, 1, &ts, NULL);
    if (r < 0 && errno != EINTR) { perror("ppoll"); break; }
    if (r > 0 && (pfd.revents & POLLIN)) {
      int n;
      while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) nfq_handle_packet(h, buf, n);
    }
  }
  while (head != tail) { nfq_set_verdict(qh, ring[head % RING].id, NF_ACCEPT, 0, NULL); head++; }
  fprintf(stderr, "delayer: delayed %lu passed %lu dropped %lu\n", delayed, passed, dropped);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
