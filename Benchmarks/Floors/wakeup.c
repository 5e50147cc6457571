// What a thread wake-up costs on this machine: two threads answer each other
// through eventfds, with an idle gap before each round (as at a low, even
// message rate) or none. Prints the CPU per round (two wake-ups).
// The floor under the daemon's CPU per message at low rates (BENCHMARKS.md,
// end to end, seventh pass).
//   cc -O2 -Wall -Wextra -o /tmp/wakeup Benchmarks/Floors/wakeup.c -lpthread && /tmp/wakeup 1000
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 20000 };
static int ping, pong;

static void signal_fd(int fd) {
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) abort();
}

static void wait_fd(int fd) {
    uint64_t value;
    if (read(fd, &value, sizeof value) != sizeof value) abort();
}

static void *answer(void *unused) {
    (void)unused;
    for (int i = 0; i < ROUNDS; i++) {
        wait_fd(ping);
        signal_fd(pong);
    }
    return NULL;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int gap_us = argc > 1 ? atoi(argv[1]) : 0;
    ping = eventfd(0, 0);
    pong = eventfd(0, 0);
    if (ping < 0 || pong < 0) return 1;
    pthread_t peer;
    if (pthread_create(&peer, NULL, answer, NULL) != 0) return 1;
    double cpu0 = cpu_seconds(), wall0 = wall_seconds();
    for (int i = 0; i < ROUNDS; i++) {
        if (gap_us) usleep(gap_us);
        signal_fd(ping);
        wait_fd(pong);
    }
    double cpu = cpu_seconds() - cpu0, wall = wall_seconds() - wall0;
    pthread_join(peer, NULL);
    printf("gap %d us: CPU per round trip (2 wake-ups) %.1f us, wall %.1f us\n", gap_us, cpu / ROUNDS * 1e6, wall / ROUNDS * 1e6);
    return 0;
}
