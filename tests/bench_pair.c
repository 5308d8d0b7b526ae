/* bench_pair.c: the measuring pair's throughput mode without acks, in C, with the best
 * offloads the kernel has: the floor the Python pair is compared with by tests/bench.py.
 *
 *   bench_pair send GROUP PORT IFADDR SIZE SECONDS    send for SECONDS, as fast as it can
 *   bench_pair recv GROUP PORT IFADDR SIZE SECONDS    count for SECONDS at most; it stops
 *                                                     0.5 s after the last datagram too
 *   ... no-offload                                    the same without GSO or GRO
 *
 * The wire format is the pair's (socket_multicast_sender.py): a header "!4sBBBxQQQ",
 * big-endian: magic "MCK1", version 1, kind 1 (DATA), flags 0x01 (NO_ACK), a pad
 * byte, the session, the sequence (from 1) and the send time in ns; then zero bytes
 * up to SIZE. The sender gives the kernel up to 128 datagrams (64 before Linux 6.9; at
 * most 64 KiB) per message with UDP_SEGMENT (GSO), eight messages per sendmmsg; where
 * the kernel refuses that, 128 plain datagrams per sendmmsg. The receiver asks for UDP_GRO and
 * reads with recvmmsg, splitting a coalesced buffer by the segment size the kernel
 * gives in its control message. Each prints one JSON line.
 *
 * Built by the bench at run time: gcc -O2 -o bench_pair bench_pair.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#define SK_MEMINFO_DROPS 8
#define HEADER_SIZE 40 /* 4 + 1 + 1 + 1 + 1 + 8 + 8 + 8 */
#define SEGMENTS 128   /* datagrams per GSO message: Linux 6.9 and later (64 before) */
#define OLD_SEGMENTS 64
#define MESSAGES 8     /* messages per sendmmsg / recvmmsg */
#define MAX_GSO 65000  /* bytes of payload per GSO message: under 64 KiB with headers */
#define BUFFER (64 * 1024)

static volatile sig_atomic_t stopping;
static int offload = 1; /* 0: no UDP_SEGMENT, no UDP_GRO (the "no-offload" argument) */
static void on_signal(int signum) { (void)signum; stopping = 1; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_pair: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put64(unsigned char *at, uint64_t value)
{
    value = htobe64(value);
    memcpy(at, &value, 8);
}

static uint64_t get64(const unsigned char *at)
{
    uint64_t value;
    memcpy(&value, at, 8);
    return be64toh(value);
}

static int run_send(int sock, struct sockaddr_in *group, struct in_addr ifaddr, int size,
                    double seconds)
{
    unsigned char ttl = 1;
    if (setsockopt(sock, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, 1) < 0 ||
        setsockopt(sock, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof ifaddr) < 0)
        fail("multicast options");
    if (connect(sock, (struct sockaddr *)group, sizeof *group) < 0)
        fail("connect");
    int per = SEGMENTS;
    if (per * size > MAX_GSO)
        per = MAX_GSO / size;
    int gso = offload && per > 1 &&
              setsockopt(sock, IPPROTO_UDP, UDP_SEGMENT, &size, sizeof size) == 0;
    /* With GSO: MESSAGES messages of `per` datagrams; without: SEGMENTS datagrams. */
    int messages = gso ? MESSAGES : SEGMENTS, each = gso ? per : 1;
    unsigned char *buffer = calloc((size_t)messages * each, size);
    struct mmsghdr msgs[SEGMENTS];
    struct iovec iov[SEGMENTS];
    uint64_t session = ((uint64_t)getpid() << 32) ^ (uint64_t)(now() * 1e9);
    if (!buffer)
        fail("calloc");
    for (int i = 0; i < messages * each; i++)
        memcpy(buffer + (size_t)i * size, "MCK1\x01\x01\x01\x00", 8);
    uint64_t sequence = 0, errors = 0;
    double started = now(), deadline = started + seconds, last = started;
    while (!stopping && (last = now()) < deadline) {
        uint64_t sent_ns = (uint64_t)(last * 1e9);
        memset(msgs, 0, sizeof msgs);
        for (int m = 0; m < messages; m++) {
            for (int s = 0; s < each; s++) {
                unsigned char *at = buffer + ((size_t)m * each + s) * size;
                put64(at + 8, session);
                put64(at + 16, sequence + 1 + (uint64_t)m * each + s);
                put64(at + 24, sent_ns);
            }
            iov[m].iov_base = buffer + (size_t)m * each * size;
            iov[m].iov_len = (size_t)each * size;
            msgs[m].msg_hdr.msg_iov = &iov[m];
            msgs[m].msg_hdr.msg_iovlen = 1;
        }
        int done = sendmmsg(sock, msgs, messages, 0);
        if (done < 0 && gso && sequence == 0 && errno == EINVAL && each > OLD_SEGMENTS) {
            each = OLD_SEGMENTS; /* a kernel before 6.9: at most 64 segments a message */
            continue;
        }
        if (done < 0 && gso && sequence == 0 && (errno == EIO || errno == EINVAL)) {
            /* The kernel took the option but will not segment on this route. */
            int off = 0;
            setsockopt(sock, IPPROTO_UDP, UDP_SEGMENT, &off, sizeof off);
            gso = 0, messages = SEGMENTS, each = 1;
            continue;
        }
        if (done < 0) {
            if (errno != ENOBUFS && errno != EAGAIN)
                fail("sendmmsg");
            errors++;
            continue;
        }
        sequence += (uint64_t)done * each;
    }
    double elapsed = last - started;
    printf("{\"sent\": %llu, \"seconds\": %.6f, \"rate\": %.1f, \"gso\": %s, "
           "\"segments\": %d, \"send_errors\": %llu}\n", (unsigned long long)sequence,
           elapsed, sequence / elapsed, gso ? "true" : "false", each,
           (unsigned long long)errors);
    return 0;
}

/* One sender, so the sequence numbers seen are kept in a bitmap that grows. */
static unsigned char *seen;
static uint64_t seen_bits, received, unique, duplicates, highest, other;

static void count(const unsigned char *at, size_t length, uint64_t *session)
{
    if (length < HEADER_SIZE || memcmp(at, "MCK1", 4) != 0 || at[5] != 1) {
        other++;
        return;
    }
    uint64_t sequence = get64(at + 16);
    if (*session == 0)
        *session = get64(at + 8);
    if (get64(at + 8) != *session || sequence == 0) {
        other++;
        return;
    }
    while (sequence >= seen_bits) {
        uint64_t bits = seen_bits ? seen_bits * 2 : 1 << 24;
        seen = realloc(seen, bits / 8);
        if (!seen)
            fail("realloc");
        memset(seen + seen_bits / 8, 0, (bits - seen_bits) / 8);
        seen_bits = bits;
    }
    received++;
    if (seen[sequence / 8] & (1 << (sequence % 8))) {
        duplicates++;
        return;
    }
    seen[sequence / 8] |= 1 << (sequence % 8);
    unique++;
    if (sequence > highest)
        highest = sequence;
}

static int run_recv(int sock, struct sockaddr_in *group, struct in_addr ifaddr, double seconds)
{
    int one = 1, buffer_size = 4 * 1024 * 1024; /* as the pair's receiver asks */
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof buffer_size);
    if (bind(sock, (struct sockaddr *)group, sizeof *group) < 0)
        fail("bind");
    struct ip_mreq join = {.imr_multiaddr = group->sin_addr, .imr_interface = ifaddr};
    if (setsockopt(sock, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof join) < 0)
        fail("IP_ADD_MEMBERSHIP");
    int gro = offload && setsockopt(sock, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
    struct timeval tick = {0, 100000}; /* wake up to look at the clock */
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    static unsigned char buffers[MESSAGES][BUFFER];
    static char controls[MESSAGES][CMSG_SPACE(sizeof(int))];
    struct mmsghdr msgs[MESSAGES];
    struct iovec iov[MESSAGES];
    uint64_t session = 0, coalesced = 0;
    double started = now(), first = 0, last = 0;
    printf("{\"ready\": true, \"gro\": %s}\n", gro ? "true" : "false");
    fflush(stdout);
    while (!stopping && now() - started < seconds && !(last && now() - last > 0.5)) {
        memset(msgs, 0, sizeof msgs);
        for (int m = 0; m < MESSAGES; m++) {
            iov[m] = (struct iovec){buffers[m], BUFFER};
            msgs[m].msg_hdr.msg_iov = &iov[m];
            msgs[m].msg_hdr.msg_iovlen = 1;
            msgs[m].msg_hdr.msg_control = controls[m];
            msgs[m].msg_hdr.msg_controllen = sizeof controls[m];
        }
        int got = recvmmsg(sock, msgs, MESSAGES, MSG_WAITFORONE, NULL);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            fail("recvmmsg");
        }
        last = now();
        first = first ? first : last;
        for (int m = 0; m < got; m++) {
            size_t length = msgs[m].msg_len, segment = length;
            struct cmsghdr *c;
            for (c = CMSG_FIRSTHDR(&msgs[m].msg_hdr); c; c = CMSG_NXTHDR(&msgs[m].msg_hdr, c))
                if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
                    int value;
                    memcpy(&value, CMSG_DATA(c), sizeof value);
                    segment = (size_t)value;
                    coalesced++;
                }
            for (size_t at = 0; at < length; at += segment)
                count(buffers[m] + at, length - at < segment ? length - at : segment, &session);
        }
    }
    uint32_t meminfo[SK_MEMINFO_DROPS + 1] = {0};
    socklen_t size = sizeof meminfo;
    long long drops = -1;
    if (getsockopt(sock, SOL_SOCKET, SO_MEMINFO, meminfo, &size) == 0 && size == sizeof meminfo)
        drops = meminfo[SK_MEMINFO_DROPS];
    double elapsed = last > first ? last - first : 0;
    printf("{\"received\": %llu, \"lost\": %llu, \"duplicates\": %llu, \"other\": %llu, "
           "\"seconds\": %.6f, \"rate\": %.1f, \"host_drops\": %lld, \"gro\": %s, "
           "\"coalesced\": %llu}\n", (unsigned long long)received,
           (unsigned long long)(highest - unique), (unsigned long long)duplicates,
           (unsigned long long)other, elapsed, elapsed ? received / elapsed : 0.0, drops,
           gro ? "true" : "false", (unsigned long long)coalesced);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")) ||
        (argc == 8 && strcmp(argv[7], "no-offload"))) {
        fprintf(stderr, "usage: bench_pair send|recv GROUP PORT IFADDR SIZE SECONDS "
                        "[no-offload]\n");
        return 2;
    }
    struct sockaddr_in group = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    struct in_addr ifaddr;
    int size = atoi(argv[5]);
    if (!inet_pton(AF_INET, argv[2], &group.sin_addr) || !inet_pton(AF_INET, argv[4], &ifaddr)
        || size < HEADER_SIZE || size > 65000) {
        fprintf(stderr, "bench_pair: bad group, interface address or size\n");
        return 2;
    }
    offload = argc == 7;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (sock < 0)
        fail("socket");
    if (!strcmp(argv[1], "send"))
        return run_send(sock, &group, ifaddr, size, atof(argv[6]));
    return run_recv(sock, &group, ifaddr, atof(argv[6]));
}
