// What a thread wake-up costs on this machine: two threads answer each other
// through eventfds, with an idle gap before each round (as at a low, even
// message rate) or none. Prints the CPU per round (two wake-ups).
// The floor under the daemon's CPU per message at low rates (BENCHMARKS.md,
// end to end, seventh pass).
//   cc -O2 -o /tmp/wakeup Benchmarks/Floors/wakeup.c -lpthread && /tmp/wakeup 1000
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <stdint.h>
static int a, b; static const int N = 20000; static int gap_us = 0;
static void *peer(void *x) { uint64_t v; for (int i = 0; i < N; i++) { read(a, &v, 8); v = 1; write(b, &v, 8); } return 0; }
int main(int argc, char **argv) {
  if (argc > 1) gap_us = atoi(argv[1]);
  a = eventfd(0, 0); b = eventfd(0, 0);
  pthread_t t; pthread_create(&t, 0, peer, 0);
  struct timespec w0, w1; clock_gettime(CLOCK_MONOTONIC, &w0);
  struct rusage r0, r1; getrusage(RUSAGE_SELF, &r0);
  uint64_t v;
  for (int i = 0; i < N; i++) { if (gap_us) usleep(gap_us); v = 1; write(a, &v, 8); read(b, &v, 8); }
  getrusage(RUSAGE_SELF, &r1); clock_gettime(CLOCK_MONOTONIC, &w1);
  double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  double wall = (w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9;
  printf("gap %d us: CPU per round trip (2 wake-ups) %.1f us, wall %.1f us\n", gap_us, cpu / N * 1e6, wall / N * 1e6);
}
