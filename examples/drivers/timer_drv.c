/*
 * timer_drv: the port timer (driver_set_timer / driver_cancel_timer /
 * driver_read_timer) and the timeout callback.
 *
 * open_port({spawn_driver, "timer_drv [start:MS] [repeat:N]"}, Opts):
 *   start:MS  -> driver_set_timer(port, MS) inside start
 *   repeat:N  -> each timeout re-arms the timer (same time) until N timeouts
 *
 * timeout: driver_output of "timeout N" (N = timeouts of this port so far).
 *
 * control (port_control/3), the data is decimal text where a number is
 * needed; the reply is text:
 *   1 MS -> driver_set_timer(port, MS): its return value ("0" / "-1")
 *   2    -> driver_cancel_timer(port): its return value
 *   3    -> driver_read_timer: "RC LEFT" with LEFT rounded up to a multiple
 *           of 100 ms (what a scenario can compare), e.g. "0 5000"
 *   4    -> driver_read_timer: "RC LEFT" with LEFT exact (milliseconds)
 *   5    -> the number of timeouts so far
 *   6 MS -> driver_set_timer twice (MS * 100, then MS): "RC1 RC2"
 *   7 N  -> timing loop for benches: N times set(60000) + read + cancel;
 *           replies the nanoseconds the loop took (erl_drv_monotonic_time)
 *   8 MS -> set the timer to MS, then cancel it at once: "RC1 RC2"
 *   9    -> set, read and cancel on the handle of the port stopped last (a
 *           dead handle): "RC1 RC2 RC3", or "none" before any port stopped
 *  10 MS -> set the timer to 0, then at once to MS: "RC1 RC2"
 *  11    -> driver_async of a job (this driver has no ready_async, so the
 *           runtime calls async_free once the job ran): "queued" for a
 *           positive id, "ran" for 0, "failed" for -1
 *  12    -> "INVOKED FREED": the counts of those jobs' calls
 *  13 MS -> a measured timer: driver_set_timer(port, MS), remembering when
 *           (erl_drv_monotonic_time); its timeout outputs "timeout N in time"
 *           when at least MS ms went by since, else "timeout N early E"
 *  14 MS -> sleeps 300 ms inside the callback, then does what 13 does (a
 *           timer set late in a long callback still counts from when it is
 *           set)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvPort port;
    unsigned long timeouts;
    unsigned long repeat;  /* re-arm until this many timeouts (0: never) */
    unsigned long repeat_ms;
    unsigned long measured_ms; /* the measured timer's time (13, 14) */
    ErlDrvTime measured_from;  /* when it was set, in ms (BEAM's may be negative) */
    int measuring;
} TimerState;

/* Calls of the async jobs of control 11 (any thread). */
static unsigned long jobs_invoked, jobs_freed;

static void job_invoke(void *data)
{
    (void)data;
    __atomic_add_fetch(&jobs_invoked, 1, __ATOMIC_SEQ_CST);
}

static void job_free(void *data)
{
    (void)data;
    __atomic_add_fetch(&jobs_freed, 1, __ATOMIC_SEQ_CST);
}

/* The number in `text` after `prefix` (0 if absent). */
static unsigned long option(const char *text, const char *prefix)
{
    const char *at = strstr(text, prefix);
    return at == NULL ? 0 : strtoul(at + strlen(prefix), NULL, 10);
}

static ErlDrvData timer_start(ErlDrvPort port, char *command)
{
    TimerState *st = driver_alloc(sizeof(TimerState));
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    st->timeouts = 0;
    st->repeat = option(command, "repeat:");
    st->repeat_ms = 0;
    st->measured_ms = 0;
    st->measured_from = 0;
    st->measuring = 0;
    if (strstr(command, "start:") != NULL)
        driver_set_timer(port, option(command, "start:"));
    return (ErlDrvData)st;
}

/* The handle of the port stopped last (dead from then on). */
static ErlDrvPort last_stopped;
static int have_stopped;

static void timer_stop(ErlDrvData data)
{
    TimerState *st = (TimerState *)data;
    last_stopped = st->port;
    have_stopped = 1;
    driver_free(data);
}

static void timer_timeout(ErlDrvData data)
{
    TimerState *st = (TimerState *)data;
    char text[32];
    int n;
    st->timeouts++;
    if (st->measuring) {
        ErlDrvTime elapsed = erl_drv_monotonic_time(ERL_DRV_MSEC) - st->measured_from;
        st->measuring = 0;
        if (elapsed >= (ErlDrvTime)st->measured_ms)
            n = snprintf(text, sizeof text, "timeout %lu in time", st->timeouts);
        else
            n = snprintf(text, sizeof text, "timeout %lu early %lld", st->timeouts,
                         (long long)elapsed);
    } else {
        n = snprintf(text, sizeof text, "timeout %lu", st->timeouts);
    }
    driver_output(st->port, text, (ErlDrvSizeT)n);
    if (st->timeouts < st->repeat)
        driver_set_timer(st->port, st->repeat_ms);
}

static ErlDrvSSizeT timer_control(ErlDrvData data, unsigned int command,
                                  char *buf, ErlDrvSizeT len,
                                  char **rbuf, ErlDrvSizeT rlen)
{
    TimerState *st = (TimerState *)data;
    char text[64];
    unsigned long left = 12345; /* overwritten by driver_read_timer */
    unsigned long ms = arg_number(buf, len);
    int rc, rc2, rc3;
    switch (command) {
    case 1:
        st->repeat_ms = ms;
        snprintf(text, sizeof text, "%d", driver_set_timer(st->port, ms));
        break;
    case 2:
        snprintf(text, sizeof text, "%d", driver_cancel_timer(st->port));
        break;
    case 3:
        rc = driver_read_timer(st->port, &left);
        snprintf(text, sizeof text, "%d %lu", rc, (left + 99) / 100 * 100);
        break;
    case 4:
        rc = driver_read_timer(st->port, &left);
        snprintf(text, sizeof text, "%d %lu", rc, left);
        break;
    case 5:
        snprintf(text, sizeof text, "%lu", st->timeouts);
        break;
    case 6:
        rc = driver_set_timer(st->port, ms * 100);
        rc2 = driver_set_timer(st->port, ms);
        snprintf(text, sizeof text, "%d %d", rc, rc2);
        break;
    case 7: {
        unsigned long i;
        ErlDrvTime t0 = erl_drv_monotonic_time(ERL_DRV_NSEC);
        for (i = 0; i < ms; i++) {
            driver_set_timer(st->port, 60000);
            driver_read_timer(st->port, &left);
            driver_cancel_timer(st->port);
        }
        snprintf(text, sizeof text, "%lld",
                 (long long)(erl_drv_monotonic_time(ERL_DRV_NSEC) - t0));
        break;
    }
    case 8:
        rc = driver_set_timer(st->port, ms);
        rc2 = driver_cancel_timer(st->port);
        snprintf(text, sizeof text, "%d %d", rc, rc2);
        break;
    case 10:
        rc = driver_set_timer(st->port, 0);
        rc2 = driver_set_timer(st->port, ms);
        snprintf(text, sizeof text, "%d %d", rc, rc2);
        break;
    case 11: {
        long id = driver_async(st->port, NULL, job_invoke, NULL, job_free);
        snprintf(text, sizeof text, "%s",
                 id > 0 ? "queued" : id == 0 ? "ran" : "failed");
        break;
    }
    case 12:
        snprintf(text, sizeof text, "%lu %lu",
                 __atomic_load_n(&jobs_invoked, __ATOMIC_SEQ_CST),
                 __atomic_load_n(&jobs_freed, __ATOMIC_SEQ_CST));
        break;
    case 14:
        usleep(300 * 1000);
        /* fall through */
    case 13:
        st->measured_ms = ms;
        st->measured_from = erl_drv_monotonic_time(ERL_DRV_MSEC);
        st->measuring = 1;
        snprintf(text, sizeof text, "%d", driver_set_timer(st->port, ms));
        break;
    case 9:
        if (!have_stopped) {
            snprintf(text, sizeof text, "none");
            break;
        }
        rc = driver_set_timer(last_stopped, 10);
        rc2 = driver_read_timer(last_stopped, &left);
        rc3 = driver_cancel_timer(last_stopped);
        snprintf(text, sizeof text, "%d %d %d", rc, rc2, rc3);
        break;
    default:
        return -1;
    }
    return reply(rbuf, rlen, text);
}

static ErlDrvEntry timer_entry = {
    .start = timer_start,
    .stop = timer_stop,
    .driver_name = "timer_drv",
    .control = timer_control,
    .timeout = timer_timeout,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(timer_drv)
{
    return &timer_entry;
}
