/*
 * delay_line: a network link with a fixed one-way delay, for the WAN section of bench/.
 *
 *   delay_line IFNAME LOCAL_IP PREFIX_LEN OCTET=ONE_WAY_US [OCTET=ONE_WAY_US]...
 *
 * Creates the TUN interface IFNAME with address LOCAL_IP/PREFIX_LEN (e.g. 10.77.0.1/24, run it
 * in a network namespace of its own) and brings it up. Every other address of the subnet then
 * routes into this program, which sends each IPv4 packet back in with its source and destination
 * swapped, ONE_WAY_US microseconds after it arrived, the delay chosen by the last octet of the
 * remote address (unlisted octets: no delay). A client that connects to 10.77.0.50:PORT is
 * answered by the local server listening on LOCAL_IP:PORT, which sees the client as 10.77.0.50:
 * every segment of the conversation (SYN, SYN-ACK, TLS records, ACKs, FIN) crosses the link once
 * per direction, so a connection pays 2 x ONE_WAY_US for its handshake, as on a real network.
 * Swapping the two addresses changes neither the IP header checksum nor the TCP/UDP pseudo-header
 * sum, so no checksum is touched.
 *
 * Prints "ready sched=fifo|other" on stdout once the interface is up, and exits when stdin
 * reaches EOF (the harness died or is done); the interface goes away with it. For every "c" read
 * on stdin it prints one line "syns OCTET=N ..." on stdout: the TCP SYNs (without ACK: connection
 * attempts, a retransmitted SYN counted again) sent so far to each remote address. It asks for
 * SCHED_FIFO (needs CAP_SYS_NICE) and 1 ns timer slack, so that a packet leaves within tens of
 * microseconds of its due time even while the subjects keep both cores busy.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PACKET 65536
#define QUEUE_CAP 8192 /* packets in flight per delay class; beyond that, drop (TCP retransmits) */
#define MAX_CLASSES 16

struct packet {
    long long due_ns;
    size_t len;
    unsigned char *data;
};

/* Packets of one delay: arrival order is due order, so a ring buffer is a priority queue. */
struct queue {
    long long delay_ns;
    struct packet ring[QUEUE_CAP];
    size_t head, count;
};

static struct queue queues[MAX_CLASSES];
static int nqueues = 0;
static int class_of_octet[256]; /* index into queues, -1 = no delay */
static unsigned long long forwarded = 0, dropped = 0, late_over_100us = 0;
static unsigned long long syns_to_octet[256]; /* TCP SYN without ACK, by remote address */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "delay_line: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int queue_for_delay(long long delay_ns) {
    for (int i = 0; i < nqueues; i++)
        if (queues[i].delay_ns == delay_ns) return i;
    if (nqueues == MAX_CLASSES) {
        fprintf(stderr, "delay_line: at most %d distinct delays\n", MAX_CLASSES);
        exit(2);
    }
    queues[nqueues].delay_ns = delay_ns;
    return nqueues++;
}

static void set_if_addr(const char *ifname, const char *ip, int prefix) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
        fprintf(stderr, "delay_line: bad address %s\n", ip);
        exit(2);
    }
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0) die("SIOCSIFADDR");
    sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) die("SIOCSIFNETMASK");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
    close(s);
}

static void send_due(int tun, long long now) {
    for (int i = 0; i < nqueues; i++) {
        struct queue *q = &queues[i];
        while (q->count > 0 && q->ring[q->head].due_ns <= now) {
            struct packet *p = &q->ring[q->head];
            if (now - p->due_ns > 100000) late_over_100us++;
            if (write(tun, p->data, p->len) < 0) dropped++;
            else forwarded++;
            free(p->data);
            q->head = (q->head + 1) % QUEUE_CAP;
            q->count--;
        }
    }
}

/* Counts a client's connection attempt: TCP, SYN set, ACK not (a SYN-ACK is the server's). */
static void count_syn(const unsigned char *ip, size_t len) {
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ip[9] != 6 || ihl < 20 || len < ihl + 14) return;
    unsigned char flags = ip[ihl + 13];
    if ((flags & 0x02) && !(flags & 0x10)) syns_to_octet[ip[15]]++;
}

static void print_syns(void) {
    printf("syns");
    for (int i = 0; i < 256; i++)
        if (syns_to_octet[i]) printf(" %d=%llu", i, syns_to_octet[i]);
    printf("\n");
    fflush(stdout);
}

static long long next_due(void) {
    long long best = -1;
    for (int i = 0; i < nqueues; i++)
        if (queues[i].count > 0 && (best < 0 || queues[i].ring[queues[i].head].due_ns < best))
            best = queues[i].ring[queues[i].head].due_ns;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: delay_line IFNAME LOCAL_IP PREFIX_LEN OCTET=ONE_WAY_US...\n");
        return 2;
    }
    const char *ifname = argv[1];
    for (int i = 0; i < 256; i++) class_of_octet[i] = -1;
    for (int i = 4; i < argc; i++) {
        int octet;
        long long us;
        if (sscanf(argv[i], "%d=%lld", &octet, &us) != 2 || octet < 0 || octet > 255 || us < 0) {
            fprintf(stderr, "delay_line: bad OCTET=ONE_WAY_US: %s\n", argv[i]);
            return 2;
        }
        class_of_octet[octet] = queue_for_delay(us * 1000);
    }

    int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tun < 0) die("open /dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(tun, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
    set_if_addr(ifname, argv[2], atoi(argv[3]));
    fcntl(tun, F_SETFL, fcntl(tun, F_GETFL) | O_NONBLOCK);

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sched_param sp = {.sched_priority = 10};
    int fifo = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    signal(SIGPIPE, SIG_IGN);
    printf("ready sched=%s\n", fifo ? "fifo" : "other");
    fflush(stdout);

    static unsigned char buf[MAX_PACKET];
    struct pollfd fds[2] = {{.fd = tun, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    for (;;) {
        long long now = now_ns();
        send_due(tun, now);
        long long due = next_due();
        struct timespec ts, *tsp = NULL;
        if (due >= 0) {
            long long wait = due - now_ns();
            if (wait < 0) wait = 0;
            ts.tv_sec = wait / 1000000000LL;
            ts.tv_nsec = wait % 1000000000LL;
            tsp = &ts;
        }
        int n = ppoll(fds, 2, tsp, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("ppoll");
        }
        if (fds[1].revents) {
            char cmd[256];
            ssize_t got = read(0, cmd, sizeof cmd);
            if (got <= 0) break;
            for (ssize_t i = 0; i < got; i++)
                if (cmd[i] == 'c') print_syns();
        }
        if (!(fds[0].revents & POLLIN)) continue;
        for (;;) {
            ssize_t len = read(tun, buf, sizeof buf);
            if (len < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                die("read tun");
            }
            long long arrived = now_ns();
            if (len < 20 || (buf[0] >> 4) != 4) continue; /* IPv4 only */
            unsigned char tmp[4];
            memcpy(tmp, buf + 12, 4);
            memcpy(buf + 12, buf + 16, 4);
            memcpy(buf + 16, tmp, 4);
            count_syn(buf, (size_t)len);
            int cls = class_of_octet[buf[15]]; /* the new source: the remote address */
            if (cls < 0) {
                if (write(tun, buf, (size_t)len) < 0) dropped++;
                else forwarded++;
                continue;
            }
            struct queue *q = &queues[cls];
            if (q->count == QUEUE_CAP) {
                dropped++;
                continue;
            }
            unsigned char *copy = malloc((size_t)len);
            if (!copy) die("malloc");
            memcpy(copy, buf, (size_t)len);
            struct packet *p = &q->ring[(q->head + q->count) % QUEUE_CAP];
            p->due_ns = arrived + q->delay_ns;
            p->len = (size_t)len;
            p->data = copy;
            q->count++;
        }
    }
    fprintf(stderr, "delay_line: %llu packets forwarded, %llu dropped, %llu sent over 100 us late\n",
            forwarded, dropped, late_over_100us);
    return 0;
}
