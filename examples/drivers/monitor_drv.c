/*
 * monitor_drv: process monitors from a driver (driver_monitor_process,
 * driver_demonitor_process, driver_get_monitored_process,
 * driver_compare_monitors) and the process_exit callback.
 *
 * A port keeps 8 monitor slots. control (port_control/3), the data is the
 * slot number (decimal) where one is needed; replies are text:
 *   1 N   -> monitor driver_caller into slot N: "RC"
 *   2 N   -> demonitor slot N: "RC"
 *   3 N   -> driver_get_monitored_process of slot N: "nil", or "pid" and the
 *            term {Port, monitored, N, Pid} to the owner
 *   4 N   -> monitor driver_connected (the owner) into slot N: "RC"
 *   5 NM  -> driver_compare_monitors of slots N and M (two digits), both ways: "0" (equal),
 *            "ne" (distinct, the two orders opposite) or "inconsistent A B"
 *   6     -> remember driver_caller (for control 7)
 *   7 N   -> monitor the remembered process into slot N: "RC"
 *   8 N   -> process_exit of slot N demonitors it (RC reported then; BEAM
 *            crashes on that; ddll removes it: 0)
 *   9     -> driver_monitor_process with the handle of the port stopped last
 *            (a dead handle): "RC", or "none"
 *
 * process_exit sends {Port, process_exit, N, Pid} (N the slot whose monitor
 * it got, -1 if none; Pid from driver_get_monitored_process, or [] for
 * driver_term_nil), then, for slots of control 8, {Port, demonitor, RC}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"
#include "reply.h"

#define SLOTS 8

typedef struct {
    ErlDrvPort port;
    ErlDrvMonitor slot[SLOTS];
    int used[SLOTS];
    int demonitor_in_exit[SLOTS];
    ErlDrvTermData remembered;
} MonitorState;

static ErlDrvPort last_stopped;
static int have_stopped;

static ErlDrvData monitor_start(ErlDrvPort port, char *command)
{
    MonitorState *st = driver_alloc(sizeof(MonitorState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    return (ErlDrvData)st;
}

static void monitor_stop(ErlDrvData data)
{
    MonitorState *st = (MonitorState *)data;
    last_stopped = st->port;
    have_stopped = 1;
    driver_free(data);
}

static void send_slot_term(MonitorState *st, const char *tag, int n, ErlDrvTermData pid)
{
    ErlDrvTermData spec[] = {
        ERL_DRV_PORT, driver_mk_port(st->port),
        ERL_DRV_ATOM, driver_mk_atom((char *)tag),
        ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)n,
        ERL_DRV_PID, pid,
        ERL_DRV_TUPLE, 4,
    };
    ErlDrvTermData nil_spec[] = {
        ERL_DRV_PORT, driver_mk_port(st->port),
        ERL_DRV_ATOM, driver_mk_atom((char *)tag),
        ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)n,
        ERL_DRV_NIL,
        ERL_DRV_TUPLE, 4,
    };
    if (pid == driver_term_nil)
        erl_drv_output_term(driver_mk_port(st->port), nil_spec,
                            sizeof nil_spec / sizeof nil_spec[0]);
    else
        erl_drv_output_term(driver_mk_port(st->port), spec, sizeof spec / sizeof spec[0]);
}

static void monitor_process_exit(ErlDrvData data, ErlDrvMonitor *monitor)
{
    MonitorState *st = (MonitorState *)data;
    int n, found = -1;
    for (n = 0; n < SLOTS; n++) {
        if (st->used[n] && driver_compare_monitors(&st->slot[n], monitor) == 0) {
            found = n;
            break;
        }
    }
    send_slot_term(st, "process_exit", found,
                   driver_get_monitored_process(st->port, monitor));
    if (found >= 0 && st->demonitor_in_exit[found]) {
        int rc = driver_demonitor_process(st->port, monitor);
        ErlDrvTermData spec[] = {
            ERL_DRV_PORT, driver_mk_port(st->port),
            ERL_DRV_ATOM, driver_mk_atom("demonitor"),
            ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)rc,
            ERL_DRV_TUPLE, 3,
        };
        erl_drv_output_term(driver_mk_port(st->port), spec, sizeof spec / sizeof spec[0]);
    }
}

static ErlDrvSSizeT monitor_control(ErlDrvData data, unsigned int command,
                                    char *buf, ErlDrvSizeT len,
                                    char **rbuf, ErlDrvSizeT rlen)
{
    MonitorState *st = (MonitorState *)data;
    char text[64];
    int n = len > 0 ? (buf[0] - '0') % SLOTS : 0;
    int m = len > 1 ? (buf[1] - '0') % SLOTS : 0;
    int rc;
    ErlDrvTermData pid;
    if (n < 0 || m < 0)
        return -1;
    switch (command) {
    case 1:
    case 4:
    case 7:
        pid = command == 1 ? driver_caller(st->port)
            : command == 4 ? driver_connected(st->port)
            : st->remembered;
        rc = driver_monitor_process(st->port, pid, &st->slot[n]);
        if (rc == 0)
            st->used[n] = 1;
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 2:
        snprintf(text, sizeof text, "%d", driver_demonitor_process(st->port, &st->slot[n]));
        break;
    case 3:
        pid = driver_get_monitored_process(st->port, &st->slot[n]);
        if (pid == driver_term_nil) {
            snprintf(text, sizeof text, "nil");
        } else {
            send_slot_term(st, "monitored", n, pid);
            snprintf(text, sizeof text, "pid");
        }
        break;
    case 5: {
        /* The order of two distinct monitors is unspecified (BEAM's follows its references,
         * whose order differs between schedulers): only equality and antisymmetry are shown. */
        int there = driver_compare_monitors(&st->slot[n], &st->slot[m]);
        int back = driver_compare_monitors(&st->slot[m], &st->slot[n]);
        if (there == 0 && back == 0)
            snprintf(text, sizeof text, "0");
        else if ((there < 0 && back > 0) || (there > 0 && back < 0))
            snprintf(text, sizeof text, "ne");
        else
            snprintf(text, sizeof text, "inconsistent %d %d", there, back);
        break;
    }
    case 6:
        st->remembered = driver_caller(st->port);
        snprintf(text, sizeof text, "ok");
        break;
    case 8:
        st->demonitor_in_exit[n] = 1;
        snprintf(text, sizeof text, "ok");
        break;
    case 9: {
        ErlDrvMonitor scratch;
        if (!have_stopped) {
            snprintf(text, sizeof text, "none");
            break;
        }
        rc = driver_monitor_process(last_stopped, driver_caller(st->port), &scratch);
        snprintf(text, sizeof text, "%d", rc);
        break;
    }
    default:
        return -1;
    }
    return reply(rbuf, rlen, text);
}

static ErlDrvEntry monitor_entry = {
    .start = monitor_start,
    .stop = monitor_stop,
    .driver_name = "monitor_drv",
    .control = monitor_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .process_exit = monitor_process_exit,
};

DRIVER_INIT(monitor_drv)
{
    return &monitor_entry;
}
