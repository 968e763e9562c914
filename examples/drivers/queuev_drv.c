/*
 * queuev_drv: port commands queued whole as I/O vectors (what OTP's driver_SUITE queue_echo
 * checks with sub-binaries of heap and reference-counted binaries).
 *
 * outputv: driver_enqv (or driver_pushqv in push mode) of the command's ErlIOVec, skip 0.
 * Nothing is echoed; the data is read back with control:
 *   1      -> enqueue mode (the default): "ok"
 *   2      -> push mode: "ok"
 *   3      -> "SIZE VLEN": driver_sizeq and the entry count driver_peekq reports
 *   4 N    -> the first N queued bytes (driver_peekq, across entries): the bytes, or "short"
 *   5 N    -> driver_deq(N): "RC"
 */
#include <string.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvPort port;
    int push;
} QueuevState;

static ErlDrvData qv_start(ErlDrvPort port, char *command)
{
    QueuevState *st = driver_alloc(sizeof(QueuevState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    st->push = 0;
    return (ErlDrvData)st;
}

static void qv_stop(ErlDrvData data)
{
    driver_free(data);
}

static void qv_outputv(ErlDrvData data, ErlIOVec *ev)
{
    QueuevState *st = (QueuevState *)data;
    if (st->push)
        driver_pushqv(st->port, ev, 0);
    else
        driver_enqv(st->port, ev, 0);
}

static ErlDrvSSizeT qv_control(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    QueuevState *st = (QueuevState *)data;
    unsigned long n = arg_number(buf, len);
    int vlen = 0, i;
    SysIOVec *iov;
    char *out;
    size_t got = 0;
    switch (command) {
    case 1:
    case 2:
        st->push = command == 2;
        return reply(rbuf, rlen, "ok");
    case 3:
        iov = driver_peekq(st->port, &vlen);
        (void)iov;
        return replyf(rbuf, rlen, "%ld %d", (long)driver_sizeq(st->port), vlen);
    case 4:
        iov = driver_peekq(st->port, &vlen);
        if ((long)n > (long)driver_sizeq(st->port))
            return reply(rbuf, rlen, "short");
        out = n > rlen ? driver_alloc(n) : *rbuf;
        if (out == NULL)
            return -1;
        for (i = 0; i < vlen && got < n; i++) {
            size_t take = iov[i].iov_len < n - got ? iov[i].iov_len : n - got;
            memcpy(out + got, iov[i].iov_base, take);
            got += take;
        }
        *rbuf = out;
        return (ErlDrvSSizeT)n;
    case 5:
        return replyf(rbuf, rlen, "%ld", (long)driver_deq(st->port, n));
    default:
        return -1;
    }
}

static ErlDrvEntry queuev_entry = {
    .start = qv_start,
    .stop = qv_stop,
    .driver_name = "queuev_drv",
    .control = qv_control,
    .outputv = qv_outputv,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(queuev_drv)
{
    return &queuev_entry;
}
