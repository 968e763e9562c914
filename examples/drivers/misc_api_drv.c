/*
 * misc_api_drv: the environment (erl_drv_putenv / erl_drv_getenv), driver_system_info with
 * the struct sizes of older drivers, erl_drv_consume_timeslice, and driver threads sending
 * many messages (erl_drv_send_term / erl_drv_output_term).
 *
 * control (port_control/3), data is text, the reply is text:
 *   p KEY=VALUE   -> erl_drv_putenv(KEY, VALUE): "RC"
 *   g SIZE KEY    -> erl_drv_getenv(KEY) into a SIZE-byte buffer (SIZE <= 4096):
 *                    "RC SIZE'" and, when RC is 0, " VALUE" (SIZE' as written back)
 *   i N           -> driver_system_info with the struct cut after its N-th field (1..11;
 *                    0: size 0). The struct is filled with 0xA5 first; the reply lists the 11
 *                    fields, "-" for one left untouched, else its value, host facts reduced:
 *                    erts_version "str", scheduler_threads "pos" when positive
 *   c P1 P2 ...   -> erl_drv_consume_timeslice(port, Pi) in turn: "R1 R2 ..."
 *   d             -> erl_drv_consume_timeslice on the handle of the port stopped last (a dead
 *                    handle): "RC", or "none"
 *   r K           -> remember driver_caller as receiver K (0..3): "ok"
 *   b T M         -> T driver threads (T <= 4); thread K sends M messages {Port, K, I}
 *                    (I = 1..M) to receiver K with erl_drv_send_term; all joined before the
 *                    reply: "sent S" (S: sends that returned 1)
 *   o T M         -> the same with erl_drv_output_term (all to the owner; thread K's
 *                    messages are {Port, K, I} too)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"
#include "reply.h"

#define RECEIVERS 4

typedef struct {
    ErlDrvPort port;
    ErlDrvTermData receiver[RECEIVERS];
} MiscState;

static ErlDrvPort last_stopped;
static int have_stopped;

typedef struct {
    ErlDrvTermData port_term;
    ErlDrvTermData receiver; /* 0: erl_drv_output_term */
    int index;
    int count;
    int sent;
} Sender;

static ErlDrvData misc_start(ErlDrvPort port, char *command)
{
    MiscState *st = driver_alloc(sizeof(MiscState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    return (ErlDrvData)st;
}

static void misc_stop(ErlDrvData data)
{
    MiscState *st = (MiscState *)data;
    last_stopped = st->port;
    have_stopped = 1;
    driver_free(st);
}

static void *send_loop(void *arg)
{
    Sender *s = arg;
    int i;
    for (i = 1; i <= s->count; i++) {
        ErlDrvTermData spec[] = {
            ERL_DRV_PORT, s->port_term,
            ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)s->index,
            ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)i,
            ERL_DRV_TUPLE, 3,
        };
        int n = sizeof spec / sizeof spec[0];
        int rc = s->receiver != 0 ? erl_drv_send_term(s->port_term, s->receiver, spec, n)
                                  : erl_drv_output_term(s->port_term, spec, n);
        if (rc == 1)
            s->sent++;
    }
    return NULL;
}

static void describe_int(char *out, size_t room, int value)
{
    if (value == (int)0xA5A5A5A5)
        snprintf(out, room, "-");
    else
        snprintf(out, room, "%d", value);
}

static void system_info(int fields, char *out, size_t room)
{
    static const size_t ends[] = {
        0,
        offsetof(ErlDrvSysInfo, driver_minor_version),
        offsetof(ErlDrvSysInfo, erts_version),
        offsetof(ErlDrvSysInfo, otp_release),
        offsetof(ErlDrvSysInfo, thread_support),
        offsetof(ErlDrvSysInfo, smp_support),
        offsetof(ErlDrvSysInfo, async_threads),
        offsetof(ErlDrvSysInfo, scheduler_threads),
        offsetof(ErlDrvSysInfo, nif_major_version),
        offsetof(ErlDrvSysInfo, nif_minor_version),
        offsetof(ErlDrvSysInfo, dirty_scheduler_support),
        sizeof(ErlDrvSysInfo),
    };
    ErlDrvSysInfo si;
    char f[11][32];
    void *unset;
    memset(&si, 0xA5, sizeof si);
    memset(&unset, 0xA5, sizeof unset);
    if (fields < 0 || fields > 11)
        fields = 11;
    driver_system_info(&si, ends[fields]);
    describe_int(f[0], sizeof f[0], si.driver_major_version);
    describe_int(f[1], sizeof f[1], si.driver_minor_version);
    snprintf(f[2], sizeof f[2], "%s",
             (void *)si.erts_version == unset ? "-" : si.erts_version ? "str" : "null");
    snprintf(f[3], sizeof f[3], "%s",
             (void *)si.otp_release == unset ? "-" : si.otp_release ? si.otp_release : "null");
    describe_int(f[4], sizeof f[4], si.thread_support);
    describe_int(f[5], sizeof f[5], si.smp_support);
    describe_int(f[6], sizeof f[6], si.async_threads);
    if (si.scheduler_threads > 0)
        snprintf(f[7], sizeof f[7], "pos");
    else
        describe_int(f[7], sizeof f[7], si.scheduler_threads);
    describe_int(f[8], sizeof f[8], si.nif_major_version);
    describe_int(f[9], sizeof f[9], si.nif_minor_version);
    describe_int(f[10], sizeof f[10], si.dirty_scheduler_support);
    snprintf(out, room, "%s %s %s %s %s %s %s %s %s %s %s", f[0], f[1], f[2], f[3], f[4],
             f[5], f[6], f[7], f[8], f[9], f[10]);
}

static ErlDrvSSizeT misc_control(ErlDrvData data, unsigned int command, char *buf,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    MiscState *st = (MiscState *)data;
    char arg[4200];
    char out[4400];
    arg_text(buf, len, arg, sizeof arg);
    out[0] = '\0';
    switch (command) {
    case 'p': {
        char *eq = strchr(arg, '=');
        if (eq == NULL)
            return reply(rbuf, rlen, "badarg");
        *eq = '\0';
        snprintf(out, sizeof out, "%d", erl_drv_putenv(arg, eq + 1));
        break;
    }
    case 'g': {
        char value[4096];
        char *key = strchr(arg, ' ');
        size_t size = (size_t)strtoul(arg, NULL, 10);
        int rc;
        if (key == NULL || size > sizeof value)
            return reply(rbuf, rlen, "badarg");
        rc = erl_drv_getenv(key + 1, value, &size);
        if (rc == 0)
            snprintf(out, sizeof out, "%d %lu %s", rc, (unsigned long)size, value);
        else
            snprintf(out, sizeof out, "%d %lu", rc, (unsigned long)size);
        break;
    }
    case 'i':
        system_info(atoi(arg), out, sizeof out);
        break;
    case 'c': {
        char *p = arg;
        size_t used = 0;
        while (*p != '\0' && used < sizeof out - 16) {
            char *end;
            long percent = strtol(p, &end, 10);
            if (end == p)
                break;
            used += (size_t)snprintf(out + used, sizeof out - used, "%s%d", used ? " " : "",
                                     erl_drv_consume_timeslice(st->port, (int)percent));
            p = end;
        }
        break;
    }
    case 'd':
        if (!have_stopped)
            return reply(rbuf, rlen, "none");
        snprintf(out, sizeof out, "%d", erl_drv_consume_timeslice(last_stopped, 100));
        break;
    case 'r': {
        int k = atoi(arg);
        if (k < 0 || k >= RECEIVERS)
            return reply(rbuf, rlen, "badarg");
        st->receiver[k] = driver_caller(st->port);
        return reply(rbuf, rlen, "ok");
    }
    case 'b':
    case 'o': {
        Sender senders[RECEIVERS];
        ErlDrvTid tids[RECEIVERS];
        int threads = 0, count = 0, k, sent = 0;
        if (sscanf(arg, "%d %d", &threads, &count) != 2 || threads < 1 ||
            threads > RECEIVERS)
            return reply(rbuf, rlen, "badarg");
        for (k = 0; k < threads; k++) {
            senders[k].port_term = driver_mk_port(st->port);
            senders[k].receiver = command == 'b' ? st->receiver[k] : 0;
            senders[k].index = k;
            senders[k].count = count;
            senders[k].sent = 0;
            if (erl_drv_thread_create("misc_sender", &tids[k], send_loop, &senders[k],
                                      NULL) != 0)
                return reply(rbuf, rlen, "thread_create failed");
        }
        for (k = 0; k < threads; k++) {
            erl_drv_thread_join(tids[k], NULL);
            sent += senders[k].sent;
        }
        snprintf(out, sizeof out, "sent %d", sent);
        break;
    }
    default:
        return reply(rbuf, rlen, "unknown");
    }
    return reply(rbuf, rlen, out);
}

static ErlDrvEntry misc_api_driver_entry = {
    .start = misc_start,
    .stop = misc_stop,
    .driver_name = "misc_api_drv",
    .control = misc_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING,
};

DRIVER_INIT(misc_api_drv)
{
    return &misc_api_driver_entry;
}
