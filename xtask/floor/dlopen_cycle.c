/*
 * The machine's floor under a driver load + unload cycle: dlopen (RTLD_NOW |
 * RTLD_LOCAL, as BEAM and ddll open drivers), dlsym of driver_init, dlclose of
 * a trivial library, N times. Prints microseconds per cycle, best of 5 rounds.
 *
 *   usage: dlopen_cycle LIBRARY [N]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    double best = 0;
    if (argc < 2 || n <= 0) {
        fprintf(stderr, "usage: dlopen_cycle LIBRARY [N]\n");
        return 2;
    }
    for (int round = 0; round < 5; round++) {
        double start = now_us(), took;
        for (int i = 0; i < n; i++) {
            void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
            if (lib == NULL || dlsym(lib, "driver_init") == NULL) {
                fprintf(stderr, "%s\n", dlerror());
                return 1;
            }
            dlclose(lib);
        }
        took = (now_us() - start) / n;
        if (round == 0 || took < best)
            best = took;
    }
    printf("C dlopen+dlsym+dlclose of a trivial library: %.2f us per cycle (best of 5 rounds of %d)\n",
           best, n);
    return 0;
}
