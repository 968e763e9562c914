/*
 * init_ack_drv: ERL_DRV_FLAG_USE_INIT_ACK. open_port completes when the
 * driver calls erl_drv_init_ack, not when start returns.
 *
 * open_port({spawn_driver, "init_ack_drv MODE"}, Opts). start returns a
 * state labelled "started"; an acknowledgement hands over a state labelled
 * "acked" (or an ERL_DRV_ERROR_* value). MODE:
 *   timer          -> set a 20 ms timer; timeout sends {Port, timeout,
 *                     Label} (Label: the label of the data it got), then
 *                     acknowledges
 *   timer_error    -> the same, acknowledging ERL_DRV_ERROR_GENERAL
 *   timer_errno    -> the same, acknowledging ERL_DRV_ERROR_ERRNO with
 *                     errno ENOENT
 *   timer_badarg   -> the same, acknowledging ERL_DRV_ERROR_BADARG
 *   timer_twice    -> timeout acknowledges twice: "acked", then "late"
 *   timer_fail     -> timeout fails the port (driver_failure_atom,
 *                     "failed") instead of acknowledging
 *   now            -> acknowledge inside start (a state labelled
 *                     "now_acked"), then as timer
 *   now_error      -> acknowledge ERL_DRV_ERROR_GENERAL inside start, then
 *                     as timer
 *   async          -> an async job; ready_async sends {Port, ready_async,
 *                     Label}, then acknowledges
 *   output         -> driver_output of "early" inside start, then as timer
 *   thread         -> a driver thread acknowledges, 20 ms after start (ddll
 *                     takes the port's lock for it; BEAM expects a callback
 *                     of the port, so only ddll's tests use this); stop
 *                     joins it
 *   start_error    -> start returns ERL_DRV_ERROR_GENERAL, no acknowledgement
 *   start_badarg   -> start returns ERL_DRV_ERROR_BADARG, no acknowledgement
 *   now_start_error-> acknowledge inside start, then return
 *                     ERL_DRV_ERROR_GENERAL
 *   never          -> never acknowledges (open_port waits until the port
 *                     is gone)
 *
 * control (port_control/3); the reply is text:
 *   9  -> the label of the port's data
 *   11 -> the labels of the ports stopped since the last 11, oldest first,
 *         separated by spaces
 *   12 -> acknowledge again, with a state labelled "late": "ok"
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"
#include "reply.h"
#include "stop_log.h"

#define HANDED_MAX 4

typedef struct AckState {
    ErlDrvPort port;
    const char *label;
    const char *mode;
    /* The state start returned (itself for that one). */
    struct AckState *origin;
    /* On the origin: the states it acknowledged with; stop frees them all. */
    struct AckState *handed[HANDED_MAX];
    int handed_count;
    /* On the origin, mode thread: the acknowledging thread. */
    ErlDrvTid thread;
    int has_thread;
} AckState;

/* A state no port owns (the later acknowledgements): never freed. */
static AckState late_state = {NULL, "late", "late", NULL, {NULL}, 0, NULL, 0};

static AckState *new_state(ErlDrvPort port, const char *label, const char *mode)
{
    AckState *st = driver_alloc(sizeof(AckState));
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    st->port = port;
    st->label = label;
    st->mode = mode;
    st->origin = st;
    return st;
}

/* Frees the origin `st` and every state it acknowledged with. */
static void free_family(AckState *st)
{
    int i;
    for (i = 0; i < st->handed_count; i++)
        driver_free(st->handed[i]);
    driver_free(st);
}

/* Acknowledges with a new state labelled `label` (`st` is the origin). */
static void ack_with(AckState *st, const char *label)
{
    AckState *acked;
    if (st->handed_count == HANDED_MAX
        || (acked = new_state(st->port, label, st->mode)) == NULL) {
        erl_drv_init_ack(st->port, ERL_DRV_ERROR_GENERAL);
        return;
    }
    acked->origin = st;
    st->handed[st->handed_count++] = acked;
    erl_drv_init_ack(st->port, (ErlDrvData)acked);
}

static void ack_error(AckState *st, const char *kind)
{
    if (strcmp(kind, "error") == 0) {
        erl_drv_init_ack(st->port, ERL_DRV_ERROR_GENERAL);
    } else if (strcmp(kind, "errno") == 0) {
        errno = ENOENT;
        erl_drv_init_ack(st->port, ERL_DRV_ERROR_ERRNO);
    } else {
        erl_drv_init_ack(st->port, ERL_DRV_ERROR_BADARG);
    }
}

static int is_mode(const AckState *st, const char *mode)
{
    return strcmp(st->mode, mode) == 0;
}

static const char *mode_of(const char *command)
{
    static const char *modes[] = {
        "now", "now_error", "timer", "timer_error", "timer_errno", "timer_badarg",
        "timer_twice", "timer_fail", "async", "output", "start_error", "start_badarg",
        "now_start_error", "never", "thread",
    };
    const char *space = strchr(command, ' ');
    size_t i;
    if (space == NULL)
        return "never";
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(space + 1, modes[i]) == 0)
            return modes[i];
    }
    return "never";
}

static void send_label(AckState *st, const char *tag)
{
    ErlDrvTermData spec[] = {
        ERL_DRV_PORT, driver_mk_port(st->port),
        ERL_DRV_ATOM, driver_mk_atom((char *)tag),
        ERL_DRV_STRING, (ErlDrvTermData)st->label, strlen(st->label),
        ERL_DRV_TUPLE, 3,
    };
    erl_drv_output_term(driver_mk_port(st->port), spec, sizeof spec / sizeof spec[0]);
}

static void job_invoke(void *data)
{
    (void)data;
}

static void *ack_thread_main(void *arg)
{
    AckState *st = (AckState *)arg;
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    ack_with(st, "acked");
    return NULL;
}

static ErlDrvData ack_start(ErlDrvPort port, char *command)
{
    const char *mode = mode_of(command);
    AckState *st;
    if (strcmp(mode, "start_error") == 0)
        return ERL_DRV_ERROR_GENERAL;
    if (strcmp(mode, "start_badarg") == 0)
        return ERL_DRV_ERROR_BADARG;
    st = new_state(port, "started", mode);
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    if (is_mode(st, "now_start_error")) {
        ack_with(st, "now_acked");
        free_family(st);
        return ERL_DRV_ERROR_GENERAL;
    }
    if (is_mode(st, "now"))
        ack_with(st, "now_acked");
    else if (is_mode(st, "now_error"))
        ack_error(st, "error");
    if (is_mode(st, "async")) {
        driver_async(port, NULL, job_invoke, st, NULL);
    } else if (is_mode(st, "thread")) {
        if (erl_drv_thread_create("init_ack_drv", &st->thread, ack_thread_main, st, NULL) != 0) {
            free_family(st);
            return ERL_DRV_ERROR_GENERAL;
        }
        st->has_thread = 1;
    } else if (!is_mode(st, "never")) {
        if (is_mode(st, "output"))
            driver_output(port, "early", 5);
        driver_set_timer(port, 20);
    }
    return (ErlDrvData)st;
}

static void ack_stop(ErlDrvData data)
{
    AckState *st = (AckState *)data;
    log_stop(st->label);
    if (st == &late_state)
        return;
    if (st->origin->has_thread)
        erl_drv_thread_join(st->origin->thread, NULL);
    free_family(st->origin);
}

static void ack_timeout(ErlDrvData data)
{
    AckState *st = (AckState *)data;
    send_label(st, "timeout");
    if (is_mode(st, "timer_fail")) {
        driver_failure_atom(st->port, "failed");
        return;
    }
    if (strncmp(st->mode, "timer_", 6) == 0 && !is_mode(st, "timer_twice")) {
        ack_error(st, st->mode + 6);
        return;
    }
    ack_with(st->origin, "acked");
    if (is_mode(st, "timer_twice")) {
        late_state.port = st->port;
        erl_drv_init_ack(st->port, (ErlDrvData)&late_state);
    }
}

static void ack_ready_async(ErlDrvData data, ErlDrvThreadData thread_data)
{
    AckState *st = (AckState *)data;
    (void)thread_data;
    send_label(st, "ready_async");
    ack_with(st->origin, "acked");
}

static ErlDrvSSizeT ack_control(ErlDrvData data, unsigned int command,
                                char *buf, ErlDrvSizeT len,
                                char **rbuf, ErlDrvSizeT rlen)
{
    AckState *st = (AckState *)data;
    char text[STOP_LOG_MAX];
    (void)buf;
    (void)len;
    switch (command) {
    case 9:
        return reply(rbuf, rlen, st->label);
    case 11:
        take_stop_log(text);
        return reply(rbuf, rlen, text);
    case 12:
        late_state.port = st->port;
        erl_drv_init_ack(st->port, (ErlDrvData)&late_state);
        return reply(rbuf, rlen, "ok");
    default:
        return -1;
    }
}

static ErlDrvEntry ack_entry = {
    .start = ack_start,
    .stop = ack_stop,
    .driver_name = "init_ack_drv",
    .control = ack_control,
    .timeout = ack_timeout,
    .ready_async = ack_ready_async,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_INIT_ACK,
};

DRIVER_INIT(init_ack_drv)
{
    return &ack_entry;
}
