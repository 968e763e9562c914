/*
 * queue_bench_drv: the driver queue's hot paths in plain C loops, so the same
 * .so can be timed under BEAM and under ddll (cargo xtask queue-bench, and the
 * criterion bench crates/ddll/benches/queue.rs).
 *
 * port_control(Port, Loop, N) runs N operations of Loop and replies
 * "ns=T ops=N" (T: nanoseconds the loop took, CLOCK_MONOTONIC):
 *   1 driver_enq of 64 bytes; every 16th, driver_peekq and driver_deq of all
 *   2 driver_enq_bin of 64-byte slices of one binary (not adjacent, so they
 *     are separate entries); every 16th, driver_deq of driver_sizeq
 *   3 driver_enq_bin of 16 distinct 64-byte binaries in turn; every 16th,
 *     driver_deq of driver_sizeq
 * N is decimal text; a bad loop number or a queue error gives badarg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"

#define BATCH 16
#define PIECE 64

typedef struct {
    ErlDrvPort port;
    ErlDrvBinary *big;          /* 2 * BATCH pieces, for loop 2 */
    ErlDrvBinary *small[BATCH]; /* one piece each, for loop 3 */
} BenchState;

static ErlDrvData bench_start(ErlDrvPort port, char *command)
{
    BenchState *st = driver_alloc(sizeof(BenchState));
    int i;
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    st->big = driver_alloc_binary(2 * BATCH * PIECE);
    if (st->big == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st->big->orig_bytes, 'b', 2 * BATCH * PIECE);
    for (i = 0; i < BATCH; i++) {
        st->small[i] = driver_alloc_binary(PIECE);
        if (st->small[i] == NULL)
            return ERL_DRV_ERROR_GENERAL;
        memset(st->small[i]->orig_bytes, 's', PIECE);
    }
    return (ErlDrvData)st;
}

static void bench_stop(ErlDrvData data)
{
    BenchState *st = (BenchState *)data;
    int i;
    driver_deq(st->port, driver_sizeq(st->port));
    driver_free_binary(st->big);
    for (i = 0; i < BATCH; i++)
        driver_free_binary(st->small[i]);
    driver_free(st);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runs `n` operations of `loop`; 0, or -1 on a queue error. */
static int run(BenchState *st, unsigned int loop, unsigned long n)
{
    static char data[PIECE];
    ErlDrvPort port = st->port;
    unsigned long i;
    int bad = 0;
    for (i = 0; i < n; i++) {
        int last = (i % BATCH) == BATCH - 1;
        switch (loop) {
        case 1:
            bad |= driver_enq(port, data, PIECE);
            if (last) {
                int vlen, j;
                ErlDrvSizeT total = 0;
                SysIOVec *iov = driver_peekq(port, &vlen);
                for (j = 0; j < vlen; j++)
                    total += iov[j].iov_len;
                bad |= driver_deq(port, total) != 0;
            }
            break;
        case 2:
            bad |= driver_enq_bin(port, st->big, (i % BATCH) * 2 * PIECE, PIECE);
            if (last)
                bad |= driver_deq(port, driver_sizeq(port)) != 0;
            break;
        case 3:
            bad |= driver_enq_bin(port, st->small[i % BATCH], 0, PIECE);
            if (last)
                bad |= driver_deq(port, driver_sizeq(port)) != 0;
            break;
        default:
            return -1;
        }
    }
    bad |= driver_deq(port, driver_sizeq(port)) != 0;
    return bad ? -1 : 0;
}

static ErlDrvSSizeT bench_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    BenchState *st = (BenchState *)data;
    char text[32];
    unsigned long n;
    long long start, took;
    int used;
    if (len >= sizeof text)
        return -1;
    memcpy(text, buf, len);
    text[len] = '\0';
    n = strtoul(text, NULL, 10);
    start = now_ns();
    if (run(st, command, n) != 0)
        return -1;
    took = now_ns() - start;
    used = snprintf(*rbuf, rlen, "ns=%lld ops=%lu", took, n);
    return used < 0 || (ErlDrvSizeT)used >= rlen ? -1 : used;
}

static ErlDrvEntry bench_driver_entry = {
    .start = bench_start,
    .stop = bench_stop,
    .driver_name = "queue_bench_drv",
    .control = bench_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(queue_bench_drv)
{
    return &bench_driver_entry;
}
