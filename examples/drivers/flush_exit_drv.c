/*
 * flush_exit_drv: a port closing with data queued (under its port data lock) whose last
 * byte is dequeued by a later callback that its flush arranged: ready_input, ready_output,
 * timeout, ready_async, or an async job started from one of the first three. Also
 * driver_failure* from inside ready_input (with or without data queued), and the queue of
 * a port that is gone, seen from a driver thread holding its data lock.
 *
 * control (port_control/3), data is text, the reply is text:
 *   1..7  -> queue one byte, and let flush empty the queue through: 1 ready_input
 *            (a pipe with a byte in it), 2 ready_output (a pipe's write end), 3 timeout (timer 0), 4 ready_async,
 *            5 ready_input then ready_async, 6 ready_output then ready_async, 7 timeout then
 *            ready_async: "ok"
 *   8 HOW -> select a pipe with a byte in it for reading; ready_input then deselects it and ends the port:
 *            "a" driver_failure_atom(ready_input_driver_failure), "f" driver_failure(7),
 *            "e" driver_exit(0), "o" driver_failure_eof; a trailing "q" queues a byte first
 *   9     -> queue a byte, take a reference to the port data lock (reply: "inc N", the
 *            count driver_pdl_inc_refc returns) and start a thread that waits for control 10
 *   10    -> (any port) let that thread run: under the lock it peeks the queue, then drops
 *            its reference; reply "peekq NULL|ptr vlen V sizeq S dec D"
 *   11    -> driver_failure(1)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

#define FD_EVENT(fd) ((ErlDrvEvent)(ErlDrvSInt)(fd))
#define EVENT_FD(ev) ((int)(ErlDrvSInt)(ev))

typedef struct {
    ErlDrvPort port;
    ErlDrvPDL pdl;
    int mode;
    int fd;
    int other_end; /* the pipe's end that is not selected */
    char how;
    int selected_mode; /* ERL_DRV_READ or ERL_DRV_WRITE while fd is selected */
} FlushState;

/* The thread of control 9 and what it saw. */
static ErlDrvMutex *peek_lock;
static ErlDrvCond *peek_cond;
static int peek_go, peek_started;
static ErlDrvTid peek_tid;
static ErlDrvPort peek_port;
static ErlDrvPDL peek_pdl;
static char peek_result[128];

static int flush_init(void)
{
    peek_lock = erl_drv_mutex_create("flush_exit_peek");
    peek_cond = erl_drv_cond_create("flush_exit_peek");
    return peek_lock && peek_cond ? 0 : -1;
}

static void flush_finish(void)
{
    erl_drv_cond_destroy(peek_cond);
    erl_drv_mutex_destroy(peek_lock);
}

static ErlDrvData flush_start(ErlDrvPort port, char *command)
{
    FlushState *st = driver_alloc(sizeof(FlushState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    st->fd = -1;
    st->other_end = -1;
    st->pdl = driver_pdl_create(port);
    return (ErlDrvData)st;
}

static void deselect(FlushState *st)
{
    if (st->fd >= 0) {
        int fd = st->fd;
        st->fd = -1;
        /* ERL_DRV_USE off: stop_select closes the descriptor. */
        driver_select(st->port, FD_EVENT(fd), st->selected_mode | ERL_DRV_USE, 0);
    }
    if (st->other_end >= 0) {
        close(st->other_end);
        st->other_end = -1;
    }
}

static void flush_stop(ErlDrvData data)
{
    FlushState *st = (FlushState *)data;
    deselect(st);
    driver_free(st);
}

static void flush_stop_select(ErlDrvEvent event, void *reserved)
{
    (void)reserved;
    close(EVENT_FD(event));
}

static void dequeue_one(FlushState *st)
{
    driver_pdl_lock(st->pdl);
    driver_deq(st->port, 1);
    driver_pdl_unlock(st->pdl);
}

static void enqueue_one(FlushState *st)
{
    driver_pdl_lock(st->pdl);
    driver_enq(st->port, "!", 1);
    driver_pdl_unlock(st->pdl);
}

static void job(void *arg)
{
    (void)arg;
}

static void start_job(FlushState *st)
{
    driver_async(st->port, NULL, job, st, NULL);
}

/* A pipe whose selected end is ready at once: the read end with a byte written into the
 * pipe (ERL_DRV_READ), or the write end (ERL_DRV_WRITE). */
static void select_pipe(FlushState *st, int mode)
{
    int ends[2];
    if (pipe(ends) != 0) {
        driver_failure_posix(st->port, 5);
        return;
    }
    if (mode == ERL_DRV_READ) {
        if (write(ends[1], "x", 1) != 1) {
            close(ends[0]);
            close(ends[1]);
            driver_failure_posix(st->port, 5);
            return;
        }
        st->fd = ends[0];
        st->other_end = ends[1];
    } else {
        st->fd = ends[1];
        st->other_end = ends[0];
    }
    st->selected_mode = mode;
    driver_select(st->port, FD_EVENT(st->fd), mode | ERL_DRV_USE, 1);
}

static void flush_flush(ErlDrvData data)
{
    FlushState *st = (FlushState *)data;
    switch (st->mode) {
    case 1:
    case 5:
        select_pipe(st, ERL_DRV_READ);
        break;
    case 2:
    case 6:
        select_pipe(st, ERL_DRV_WRITE);
        break;
    case 3:
    case 7:
        driver_set_timer(st->port, 0);
        break;
    case 4:
        start_job(st);
        break;
    default:
        break;
    }
}

/* ready_input, ready_output and timeout of the flush modes. */
static void flushed_event(FlushState *st)
{
    deselect(st);
    if (st->mode >= 5)
        start_job(st);
    else
        dequeue_one(st);
}

static void flush_ready_input(ErlDrvData data, ErlDrvEvent event)
{
    FlushState *st = (FlushState *)data;
    (void)event;
    if (st->how == 0) {
        flushed_event(st);
        return;
    }
    deselect(st);
    switch (st->how) {
    case 'a':
        driver_failure_atom(st->port, "ready_input_driver_failure");
        break;
    case 'f':
        driver_failure(st->port, 7);
        break;
    case 'e':
        driver_exit(st->port, 0);
        break;
    case 'o':
        driver_failure_eof(st->port);
        break;
    default:
        break;
    }
}

static void flush_ready_output(ErlDrvData data, ErlDrvEvent event)
{
    (void)event;
    flushed_event((FlushState *)data);
}

static void flush_timeout(ErlDrvData data)
{
    flushed_event((FlushState *)data);
}

static void flush_ready_async(ErlDrvData data, ErlDrvThreadData job_data)
{
    (void)job_data;
    dequeue_one((FlushState *)data);
}

static void *peek_later(void *arg)
{
    SysIOVec *vec;
    int vlen = 4711;
    long size;
    int dec;
    (void)arg;
    erl_drv_mutex_lock(peek_lock);
    while (!peek_go)
        erl_drv_cond_wait(peek_cond, peek_lock);
    erl_drv_mutex_unlock(peek_lock);
    driver_pdl_lock(peek_pdl);
    vec = driver_peekq(peek_port, &vlen);
    size = (long)driver_sizeq(peek_port);
    driver_pdl_unlock(peek_pdl);
    dec = (int)driver_pdl_dec_refc(peek_pdl);
    snprintf(peek_result, sizeof peek_result, "peekq %s vlen %d sizeq %ld dec %d",
             vec == NULL ? "NULL" : "ptr", vlen, size, dec);
    return NULL;
}

static ErlDrvSSizeT flush_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    FlushState *st = (FlushState *)data;
    char out[160];
    switch (command) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        enqueue_one(st);
        st->mode = (int)command;
        return reply(rbuf, rlen, "ok");
    case 8:
        if (len < 1)
            return reply(rbuf, rlen, "badarg");
        st->how = buf[0];
        if (len > 1 && buf[1] == 'q')
            enqueue_one(st);
        select_pipe(st, ERL_DRV_READ);
        return reply(rbuf, rlen, "ok");
    case 9:
        if (peek_started)
            return reply(rbuf, rlen, "busy");
        enqueue_one(st);
        peek_port = st->port;
        peek_pdl = st->pdl;
        peek_go = 0;
        snprintf(out, sizeof out, "inc %d", (int)driver_pdl_inc_refc(st->pdl));
        if (erl_drv_thread_create("flush_exit_peek", &peek_tid, peek_later, NULL, NULL) != 0)
            return reply(rbuf, rlen, "thread_create failed");
        peek_started = 1;
        return reply(rbuf, rlen, out);
    case 10:
        if (!peek_started)
            return reply(rbuf, rlen, "none");
        erl_drv_mutex_lock(peek_lock);
        peek_go = 1;
        erl_drv_cond_signal(peek_cond);
        erl_drv_mutex_unlock(peek_lock);
        erl_drv_thread_join(peek_tid, NULL);
        peek_started = 0;
        return reply(rbuf, rlen, peek_result);
    case 11:
        driver_failure(st->port, 1);
        return reply(rbuf, rlen, "failed");
    default:
        return reply(rbuf, rlen, "unknown");
    }
}

static ErlDrvEntry flush_exit_driver_entry = {
    .init = flush_init,
    .start = flush_start,
    .stop = flush_stop,
    .ready_input = flush_ready_input,
    .ready_output = flush_ready_output,
    .driver_name = "flush_exit_drv",
    .finish = flush_finish,
    .control = flush_control,
    .timeout = flush_timeout,
    .ready_async = flush_ready_async,
    .flush = flush_flush,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING,
    .stop_select = flush_stop_select,
};

DRIVER_INIT(flush_exit_drv)
{
    return &flush_exit_driver_entry;
}
