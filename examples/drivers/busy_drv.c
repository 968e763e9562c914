/*
 * busy_drv: busy ports (set_busy_port) and busy message queues
 * (erl_drv_busy_msgq_limits), and what senders see of them.
 *
 * busy_soft_drv.c and busy_nomsgq_drv.c build this file again as drivers with
 * ERL_DRV_FLAG_SOFT_BUSY and ERL_DRV_FLAG_NO_BUSY_MSGQ (BUSY_DRV_NAME and
 * BUSY_DRV_FLAGS). Port-level locking.
 *
 * output: echoes the data (driver_output), so a scenario sees when a command
 * reached the driver; data starting with '!' then makes the port busy.
 *
 * control (port_control/3), replies are text:
 *   1 B   -> set_busy_port(port, B) (B the text "1" or "0"): "ok"
 *   2 MS  -> in MS milliseconds (driver_set_timer) set_busy_port(port, 0),
 *            then driver_output "unbusy": "ok"
 *   3 L H -> erl_drv_busy_msgq_limits with low L and high H, each a decimal
 *            number or r (ERL_DRV_BUSY_MSGQ_READ_ONLY), d (..._DISABLED),
 *            M (..._LIM_MAX), m (..._LIM_MIN), n (a NULL pointer): the values
 *            written back, "L H" (d and M for those two values, - for NULL)
 *   4 MS  -> a driver thread sleeps MS milliseconds, then set_busy_port(port, 0)
 *            (without the port's lock, as ddll allows): "ok"
 *   5     -> erl_drv_busy_msgq_limits on the port stopped last (a dead handle):
 *            "L H", or "none"
 *   6 MS  -> sleeps MS milliseconds inside the callback (holding the port's lock, so
 *            commands from other threads wait, queued): "ok"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"
#include "reply.h"

#ifndef BUSY_DRV_NAME
#define BUSY_DRV_NAME busy_drv
#define BUSY_DRV_FLAGS ERL_DRV_FLAG_USE_PORT_LOCKING
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

typedef struct {
    ErlDrvPort port;
    ErlDrvTid thread;
    int has_thread;
    long thread_ms;
} BusyState;

static ErlDrvPort last_stopped;
static int have_stopped;

static ErlDrvData busy_start(ErlDrvPort port, char *command)
{
    BusyState *st = driver_alloc(sizeof(BusyState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    return (ErlDrvData)st;
}

static void busy_stop(ErlDrvData data)
{
    BusyState *st = (BusyState *)data;
    if (st->has_thread)
        erl_drv_thread_join(st->thread, NULL);
    __atomic_store_n(&last_stopped, st->port, __ATOMIC_SEQ_CST);
    __atomic_store_n(&have_stopped, 1, __ATOMIC_SEQ_CST);
    driver_free(data);
}

static void busy_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    BusyState *st = (BusyState *)data;
    driver_output(st->port, buf, len);
    if (len > 0 && buf[0] == '!')
        set_busy_port(st->port, 1);
}

static void busy_timeout(ErlDrvData data)
{
    BusyState *st = (BusyState *)data;
    set_busy_port(st->port, 0);
    driver_output(st->port, "unbusy", 6);
}

static void *unbusy_thread(void *arg)
{
    BusyState *st = (BusyState *)arg;
    struct timespec pause = {st->thread_ms / 1000, (st->thread_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    set_busy_port(st->port, 0);
    return NULL;
}

/* A limit argument: its value, and whether it is a NULL pointer. */
static ErlDrvSizeT limit_arg(const char **text, int *null)
{
    const char *at = *text;
    ErlDrvSizeT value;
    char *end;
    while (*at == ' ')
        at++;
    *null = 0;
    switch (*at) {
    case 'r': *text = at + 1; return ERL_DRV_BUSY_MSGQ_READ_ONLY;
    case 'd': *text = at + 1; return ERL_DRV_BUSY_MSGQ_DISABLED;
    case 'M': *text = at + 1; return ERL_DRV_BUSY_MSGQ_LIM_MAX;
    case 'm': *text = at + 1; return ERL_DRV_BUSY_MSGQ_LIM_MIN;
    case 'n': *text = at + 1; *null = 1; return 0;
    default:
        value = (ErlDrvSizeT)strtoull(at, &end, 10);
        *text = end;
        return value;
    }
}

static void format_limit(char *out, size_t size, ErlDrvSizeT value, int null)
{
    if (null)
        snprintf(out, size, "-");
    else if (value == ERL_DRV_BUSY_MSGQ_DISABLED)
        snprintf(out, size, "d");
    else if (value == ERL_DRV_BUSY_MSGQ_LIM_MAX)
        snprintf(out, size, "M");
    else
        snprintf(out, size, "%lu", (unsigned long)value);
}

static ErlDrvSSizeT limits_reply(ErlDrvPort port, const char *args, char **rbuf,
                                 ErlDrvSizeT rlen)
{
    int low_null, high_null;
    ErlDrvSizeT low = limit_arg(&args, &low_null);
    ErlDrvSizeT high = limit_arg(&args, &high_null);
    char a[32], b[32];
    erl_drv_busy_msgq_limits(port, low_null ? NULL : &low, high_null ? NULL : &high);
    format_limit(a, sizeof a, low, low_null);
    format_limit(b, sizeof b, high, high_null);
    return replyf(rbuf, rlen, "%s %s", a, b);
}

static ErlDrvSSizeT busy_control(ErlDrvData data, unsigned int command, char *buf,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    BusyState *st = (BusyState *)data;
    char text[64];
    arg_text(buf, len, text, sizeof text);
    switch (command) {
    case 1:
        set_busy_port(st->port, text[0] == '1');
        return reply(rbuf, rlen, "ok");
    case 2:
        driver_set_timer(st->port, strtoul(text, NULL, 10));
        return reply(rbuf, rlen, "ok");
    case 3:
        return limits_reply(st->port, text, rbuf, rlen);
    case 4:
        if (st->has_thread)
            erl_drv_thread_join(st->thread, NULL);
        st->thread_ms = strtol(text, NULL, 10);
        st->has_thread =
            erl_drv_thread_create("unbusy", &st->thread, unbusy_thread, st, NULL) == 0;
        return reply(rbuf, rlen, st->has_thread ? "ok" : "failed");
    case 5:
        if (!__atomic_load_n(&have_stopped, __ATOMIC_SEQ_CST))
            return reply(rbuf, rlen, "none");
        return limits_reply(__atomic_load_n(&last_stopped, __ATOMIC_SEQ_CST), "r r", rbuf,
                            rlen);
    case 6: {
        long ms = strtol(text, NULL, 10);
        struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        return reply(rbuf, rlen, "ok");
    }
    default:
        return -1;
    }
}

static ErlDrvEntry busy_entry = {
    NULL,          /* init */
    busy_start,
    busy_stop,
    busy_output,
    NULL,          /* ready_input */
    NULL,          /* ready_output */
    STR(BUSY_DRV_NAME),
    NULL,          /* finish */
    NULL,          /* handle */
    busy_control,
    busy_timeout,
    NULL,          /* outputv */
    NULL,          /* ready_async */
    NULL,          /* flush */
    NULL,          /* call */
    NULL,          /* event */
    ERL_DRV_EXTENDED_MARKER,
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    BUSY_DRV_FLAGS,
    NULL,          /* handle2 */
    NULL,          /* process_exit */
    NULL,          /* stop_select */
    NULL,          /* emergency_close */
};

DRIVER_INIT(BUSY_DRV_NAME)
{
    return &busy_entry;
}
