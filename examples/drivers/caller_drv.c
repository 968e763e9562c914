/*
 * caller_drv: what driver_caller names in each callback.
 *
 * Every callback reports {caller, Port, Callback, Caller} (Caller: driver_caller's pid) to the
 * port's owner with erl_drv_output_term; start, which may not output yet, sends it to the
 * caller itself with erl_drv_send_term. Commands arrive in `output`, or in `outputv` when the
 * file is compiled with CALLER_USE_OUTPUTV (caller_v_drv.c).
 *
 * control (port_control/3): 1 -> reports "control" and replies "ok"; 2 -> sets a 0 ms timer,
 * whose timeout reports "timeout"; a term that the runtime refuses is reported as
 * {caller, Port, Callback, refused, RC}. call (port_call/3) reports "call" and returns [].
 */
#include "erl_driver.h"
#include "reply.h"

#ifndef CALLER_DRIVER_NAME
#define CALLER_DRIVER_NAME "caller_drv"
#endif

typedef struct {
    ErlDrvPort port;
} CallerState;

static void report(ErlDrvPort port, const char *callback, int from_start)
{
    ErlDrvTermData me = driver_mk_port(port);
    ErlDrvTermData caller = driver_caller(port);
    ErlDrvTermData spec[] = {
        ERL_DRV_ATOM, driver_mk_atom("caller"),
        ERL_DRV_PORT, me,
        ERL_DRV_ATOM, driver_mk_atom((char *)callback),
        ERL_DRV_PID, caller,
        ERL_DRV_TUPLE, 4,
    };
    int rc = from_start
        ? erl_drv_send_term(me, caller, spec, sizeof spec / sizeof spec[0])
        : erl_drv_output_term(me, spec, sizeof spec / sizeof spec[0]);
    if (rc <= 0) {
        ErlDrvTermData refused[] = {
            ERL_DRV_ATOM, driver_mk_atom("caller"),
            ERL_DRV_PORT, me,
            ERL_DRV_ATOM, driver_mk_atom((char *)callback),
            ERL_DRV_ATOM, driver_mk_atom("refused"),
            ERL_DRV_INT, (ErlDrvTermData)(ErlDrvSInt)rc,
            ERL_DRV_TUPLE, 5,
        };
        erl_drv_output_term(me, refused, sizeof refused / sizeof refused[0]);
    }
}

static ErlDrvData caller_start(ErlDrvPort port, char *command)
{
    CallerState *st = driver_alloc(sizeof(CallerState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    report(port, "start", 1);
    return (ErlDrvData)st;
}

static void caller_stop(ErlDrvData data)
{
    driver_free(data);
}

#ifdef CALLER_USE_OUTPUTV
static void caller_outputv(ErlDrvData data, ErlIOVec *ev)
{
    (void)ev;
    report(((CallerState *)data)->port, "outputv", 0);
}
#else
static void caller_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    (void)buf;
    (void)len;
    report(((CallerState *)data)->port, "output", 0);
}
#endif

static ErlDrvSSizeT caller_control(ErlDrvData data, unsigned int command, char *buf,
                                   ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    CallerState *st = (CallerState *)data;
    (void)buf;
    (void)len;
    switch (command) {
    case 1:
        report(st->port, "control", 0);
        return reply(rbuf, rlen, "ok");
    case 2:
        return reply(rbuf, rlen, driver_set_timer(st->port, 0) == 0 ? "set" : "failed");
    default:
        return reply(rbuf, rlen, "unknown");
    }
}

static void caller_timeout(ErlDrvData data)
{
    report(((CallerState *)data)->port, "timeout", 0);
}

static ErlDrvSSizeT caller_call(ErlDrvData data, unsigned int command, char *buf,
                                ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                                unsigned int *flags)
{
    /* The reply is the external format of [] (131, 106). */
    (void)command;
    (void)buf;
    (void)len;
    (void)flags;
    report(((CallerState *)data)->port, "call", 0);
    if (rlen < 2) {
        *rbuf = driver_alloc(2);
        if (*rbuf == NULL)
            return -1;
    }
    (*rbuf)[0] = (char)131;
    (*rbuf)[1] = 106;
    return 2;
}

static ErlDrvEntry caller_driver_entry = {
    .start = caller_start,
    .stop = caller_stop,
#ifdef CALLER_USE_OUTPUTV
    .outputv = caller_outputv,
#else
    .output = caller_output,
#endif
    .driver_name = CALLER_DRIVER_NAME,
    .control = caller_control,
    .timeout = caller_timeout,
    .call = caller_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

#ifdef CALLER_USE_OUTPUTV
DRIVER_INIT(caller_v_drv)
#else
DRIVER_INIT(caller_drv)
#endif
{
    return &caller_driver_entry;
}
