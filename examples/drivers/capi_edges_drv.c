/*
 * capi_edges_drv: C API calls at their edges, commanded by port_control (the reply is text):
 *   1 -> driver_enq of a length no allocation can hold: "enq R size S" (R its return value,
 *        S driver_sizeq afterwards)
 *   2 -> driver_pushq of such a length: "pushq R size S"
 *   3 -> driver_peekq on the empty queue: "null vlen V" or "nonnull vlen V"
 *   4 -> driver_select (read, on) of a descriptor far beyond the process's limit: "select R"
 *   5 -> driver_failure_atom with an atom of 300 'a's: "failure R"
 *   6 -> a driver thread calls driver_failure_atom(port, "from_thread") while this callback
 *        joins it: "thread R" (R what the thread's call returned)
 *   7 -> driver_enq of "abc" then driver_peekq: "vlen V first L" (L the first entry's length)
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvPort port;
    int thread_result;
} EdgeState;

static ErlDrvData edges_start(ErlDrvPort port, char *command)
{
    EdgeState *st = driver_alloc(sizeof(EdgeState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    st->thread_result = 0;
    return (ErlDrvData)st;
}

static void edges_stop(ErlDrvData data)
{
    driver_free(data);
}

static void edges_ready_input(ErlDrvData data, ErlDrvEvent event)
{
    (void)data;
    (void)event;
}

static void *failing_thread(void *arg)
{
    EdgeState *st = arg;
    st->thread_result = driver_failure_atom(st->port, "from_thread");
    return NULL;
}

/* A length no allocation can hold (the buffer is never read: allocating fails first). */
#define HUGE_LEN (((ErlDrvSizeT)1) << 62)

static ErlDrvSSizeT edges_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    EdgeState *st = (EdgeState *)data;
    char text[512];
    int r, vlen = -7;
    SysIOVec *iov;
    ErlDrvTid tid;
    (void)buf;
    (void)len;
    switch (command) {
    case 1:
        r = driver_enq(st->port, text, HUGE_LEN);
        snprintf(text, sizeof text, "enq %d size %ld", r, (long)driver_sizeq(st->port));
        break;
    case 2:
        r = driver_pushq(st->port, text, HUGE_LEN);
        snprintf(text, sizeof text, "pushq %d size %ld", r, (long)driver_sizeq(st->port));
        break;
    case 3:
        iov = driver_peekq(st->port, &vlen);
        snprintf(text, sizeof text, "%s vlen %d", iov == NULL ? "null" : "nonnull", vlen);
        break;
    case 4:
        r = driver_select(st->port, (ErlDrvEvent)(ErlDrvSInt)(INT_MAX - 1), ERL_DRV_READ, 1);
        snprintf(text, sizeof text, "select %d", r);
        break;
    case 5:
        memset(text, 'a', 300);
        text[300] = '\0';
        r = driver_failure_atom(st->port, text);
        snprintf(text, sizeof text, "failure %d", r);
        break;
    case 6:
        if (erl_drv_thread_create("failing", &tid, failing_thread, st, NULL) != 0)
            return -1;
        erl_drv_thread_join(tid, NULL);
        snprintf(text, sizeof text, "thread %d", st->thread_result);
        break;
    case 7:
        driver_enq(st->port, "abc", 3);
        iov = driver_peekq(st->port, &vlen);
        snprintf(text, sizeof text, "vlen %d first %ld", vlen,
                 iov == NULL ? -1L : (long)iov[0].iov_len);
        driver_deq(st->port, 3);
        break;
    default:
        return -1;
    }
    return reply(rbuf, rlen, text);
}

static ErlDrvEntry edges_driver_entry = {
    .start = edges_start,
    .stop = edges_stop,
    .ready_input = edges_ready_input,
    .driver_name = "capi_edges_drv",
    .control = edges_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING,
};

DRIVER_INIT(capi_edges_drv)
{
    return &edges_driver_entry;
}
