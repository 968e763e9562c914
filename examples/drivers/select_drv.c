/*
 * select_drv: driver_select (ERL_DRV_READ / ERL_DRV_WRITE / ERL_DRV_USE /
 * ERL_DRV_USE_NO_CALLBACK) with ready_input, ready_output and stop_select.
 *
 * Each port makes a non-blocking pipe in `start`. open_port options, words of
 * the command: "read" selects the read end (ERL_DRV_READ|ERL_DRV_USE) inside
 * start; "keep" leaves every selection in place when the port stops (else
 * stop turns ERL_DRV_USE off on both ends, and stop_select closes them).
 *
 * ready_input reads up to 64 bytes and outputs "in:BYTES" ("in:eof" at the
 * end of the pipe, deselecting READ). In peek mode (control 10) it does not
 * read: it outputs "ready K" and deselects READ after the N-th call, so a
 * level-triggered runtime calls it N times for one write.
 * ready_output outputs "out" and deselects WRITE.
 * stop_select closes the fd and counts the call (stop_select may call no
 * driver API: controls 7 and 19 report the counts).
 *
 * control (port_control/3), replies are text; RC is driver_select's return:
 *   1 DATA -> write DATA to the write end: "wrote N"
 *   2      -> select READ|USE on the read end: "RC"
 *   3      -> deselect READ on the read end: "RC"
 *   4      -> USE off on the read end: "RC S" (S: stop_select calls made
 *             during the driver_select call itself)
 *   5      -> select WRITE|USE on the write end: "RC"
 *   6      -> deselect WRITE on the write end: "RC"
 *   7      -> "stops N": stop_select calls so far (all ports)
 *   8      -> driver_select of fd -1 (READ on): "RC"
 *   9      -> driver_select of a closed fd (READ|USE on): "RC"
 *  10 N    -> peek mode: ready_input does not read, deselects after N calls
 *  11      -> USE on (no event) on the read end: "RC"
 *  12      -> USE_NO_CALLBACK off on the read end: "RC S"; then closes it
 *  13      -> select READ|USE on the fd shared by control 14: "RC"
 *  14      -> share this port's read end (for control 13 of another port)
 *  15      -> driver_select (READ|USE on) with the handle of the port stopped
 *             last (a dead handle): "RC", or "none"
 *  16      -> close the write end (the read end then sees end of file)
 *  17      -> select READ|USE then at once USE off, in one call: "RC1 RC2 S"
 *  18      -> USE off on the read end of a fresh pipe never selected (the
 *             fast path: stop_select at once): "RC S"
 *  19      -> "closed N": fds stop_select closed that were this driver's
 *             pipes (a check that it got the right fd)
 *  20 MS   -> ready_input sleeps MS ms before reading (for race tests)
 *  21      -> at end of file ready_input turns USE off instead (the usual
 *             close from inside the callback): outputs "in:eof RC S"
 *  22      -> USE off on the fd shared by control 14 (another port's): "RC S"
 *  23 DATA -> write DATA, wait 30 ms, deselect READ (an event reported in
 *             between must not reach ready_input): "RC"
 *  24      -> the read end's descriptor number: "N"
 *  25      -> ready_input fails the port (read_and_failed) after reading
 *  26      -> driver_monitor_process of the caller (this driver has no
 *             process_exit callback): "RC"
 *  27      -> closes the read end while it stays selected (a bad descriptor
 *             in the poll set, until the driver deselects it): "closed"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvPort port;
    int rfd, wfd;
    int keep;          /* leave selections in place when the port stops */
    unsigned long peek; /* peek mode: deselect after this many calls (0: off) */
    unsigned long peeked;
    unsigned long sleep_ms;
    int close_on_eof;  /* ready_input turns USE off at end of file */
    int fail_after_read; /* ready_input fails the port after reading */
} SelectState;

/* stop_select calls, and of those the ones whose fd was a pipe end of ours. */
static unsigned long stop_calls, closed_ours;
/* Pipe ends this driver made and has not seen closed (bit per fd < 1024). */
static unsigned char ours[1024];
static int shared_fd = -1;
static ErlDrvPort last_stopped;
static int have_stopped;

static unsigned long stops(void)
{
    return __atomic_load_n(&stop_calls, __ATOMIC_SEQ_CST);
}

static void mark(int fd, unsigned char on)
{
    if (fd >= 0 && fd < (int)sizeof ours)
        __atomic_store_n(&ours[fd], on, __ATOMIC_SEQ_CST);
}

static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    mark(fds[0], 1);
    mark(fds[1], 1);
    return 0;
}

static ErlDrvEvent ev(int fd)
{
    return (ErlDrvEvent)(ErlDrvSInt)fd;
}

static ErlDrvData select_start(ErlDrvPort port, char *command)
{
    int fds[2];
    SelectState *st;
    if (make_pipe(fds) != 0)
        return ERL_DRV_ERROR_ERRNO;
    st = driver_alloc(sizeof(SelectState));
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(st, 0, sizeof *st);
    st->port = port;
    st->rfd = fds[0];
    st->wfd = fds[1];
    st->keep = strstr(command, " keep") != NULL;
    if (strstr(command, " read") != NULL)
        driver_select(port, ev(st->rfd), ERL_DRV_READ | ERL_DRV_USE, 1);
    return (ErlDrvData)st;
}

static void select_stop(ErlDrvData data)
{
    SelectState *st = (SelectState *)data;
    last_stopped = st->port;
    have_stopped = 1;
    if (!st->keep) {
        if (st->rfd >= 0)
            driver_select(st->port, ev(st->rfd), ERL_DRV_USE, 0);
        if (st->wfd >= 0)
            driver_select(st->port, ev(st->wfd), ERL_DRV_USE, 0);
    }
    driver_free(data);
}

static void select_ready_input(ErlDrvData data, ErlDrvEvent event)
{
    SelectState *st = (SelectState *)data;
    int fd = (int)(ErlDrvSInt)event;
    char buf[64 + 3];
    ssize_t n;
    if (st->peek) {
        int len;
        st->peeked++;
        len = snprintf(buf, sizeof buf, "ready %lu", st->peeked);
        driver_output(st->port, buf, (ErlDrvSizeT)len);
        if (st->peeked >= st->peek)
            driver_select(st->port, event, ERL_DRV_READ, 0);
        return;
    }
    if (st->sleep_ms) {
        struct timespec ts = {(time_t)(st->sleep_ms / 1000),
                              (long)(st->sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    memcpy(buf, "in:", 3);
    n = read(fd, buf + 3, 64);
    if (n > 0) {
        driver_output(st->port, buf, (ErlDrvSizeT)n + 3);
        if (st->fail_after_read)
            driver_failure_atom(st->port, "read_and_failed");
    } else if (n == 0 && st->close_on_eof) {
        unsigned long before = stops();
        int rc = driver_select(st->port, event, ERL_DRV_USE, 0);
        int len = snprintf(buf, sizeof buf, "in:eof %d %lu", rc, stops() - before);
        st->rfd = -1;
        driver_output(st->port, buf, (ErlDrvSizeT)len);
    } else if (n == 0) {
        driver_output(st->port, "in:eof", 6);
        driver_select(st->port, event, ERL_DRV_READ, 0);
    } else if (errno != EAGAIN) {
        driver_output(st->port, "in:error", 8);
        driver_select(st->port, event, ERL_DRV_READ, 0);
    } else {
        driver_output(st->port, "in:none", 7);
    }
}

static void select_ready_output(ErlDrvData data, ErlDrvEvent event)
{
    SelectState *st = (SelectState *)data;
    driver_output(st->port, "out", 3);
    driver_select(st->port, event, ERL_DRV_WRITE, 0);
}

static void select_stop_select(ErlDrvEvent event, void *reserved)
{
    int fd = (int)(ErlDrvSInt)event;
    (void)reserved;
    if (fd >= 0 && fd < (int)sizeof ours && __atomic_load_n(&ours[fd], __ATOMIC_SEQ_CST)) {
        mark(fd, 0);
        __atomic_add_fetch(&closed_ours, 1, __ATOMIC_SEQ_CST);
    }
    close(fd);
    __atomic_add_fetch(&stop_calls, 1, __ATOMIC_SEQ_CST);
}

static ErlDrvSSizeT select_control(ErlDrvData data, unsigned int command,
                                   char *buf, ErlDrvSizeT len,
                                   char **rbuf, ErlDrvSizeT rlen)
{
    SelectState *st = (SelectState *)data;
    char text[64];
    unsigned long before = stops();
    int rc, rc2;
    switch (command) {
    case 1: {
        ssize_t n = write(st->wfd, buf, len);
        snprintf(text, sizeof text, "wrote %ld", (long)n);
        break;
    }
    case 2:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_READ | ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 3:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_READ, 0);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 4:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_USE, 0);
        snprintf(text, sizeof text, "%d %lu", rc, stops() - before);
        st->rfd = -1;
        break;
    case 5:
        rc = driver_select(st->port, ev(st->wfd), ERL_DRV_WRITE | ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 6:
        rc = driver_select(st->port, ev(st->wfd), ERL_DRV_WRITE, 0);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 7:
        snprintf(text, sizeof text, "stops %lu", stops());
        break;
    case 8:
        rc = driver_select(st->port, ev(-1), ERL_DRV_READ, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 9: {
        int fds[2];
        if (pipe(fds) != 0)
            return -1;
        close(fds[0]);
        close(fds[1]);
        rc = driver_select(st->port, ev(fds[0]), ERL_DRV_READ | ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    }
    case 10:
        st->peek = arg_number(buf, len);
        st->peeked = 0;
        snprintf(text, sizeof text, "ok");
        break;
    case 11:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 12:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_USE_NO_CALLBACK, 0);
        snprintf(text, sizeof text, "%d %lu", rc, stops() - before);
        mark(st->rfd, 0);
        close(st->rfd);
        st->rfd = -1;
        break;
    case 13:
        rc = driver_select(st->port, ev(shared_fd), ERL_DRV_READ | ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 14:
        shared_fd = st->rfd;
        snprintf(text, sizeof text, "ok");
        break;
    case 15:
        if (!have_stopped) {
            snprintf(text, sizeof text, "none");
            break;
        }
        rc = driver_select(last_stopped, ev(st->rfd), ERL_DRV_READ | ERL_DRV_USE, 1);
        snprintf(text, sizeof text, "%d", rc);
        break;
    case 16:
        close(st->wfd);
        mark(st->wfd, 0);
        st->wfd = -1;
        snprintf(text, sizeof text, "ok");
        break;
    case 17:
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_READ | ERL_DRV_USE, 1);
        rc2 = driver_select(st->port, ev(st->rfd), ERL_DRV_USE, 0);
        snprintf(text, sizeof text, "%d %d %lu", rc, rc2, stops() - before);
        st->rfd = -1;
        break;
    case 18: {
        int fds[2];
        if (make_pipe(fds) != 0)
            return -1;
        mark(fds[1], 0);
        close(fds[1]);
        rc = driver_select(st->port, ev(fds[0]), ERL_DRV_USE, 0);
        snprintf(text, sizeof text, "%d %lu", rc, stops() - before);
        break;
    }
    case 19:
        snprintf(text, sizeof text, "closed %lu",
                 __atomic_load_n(&closed_ours, __ATOMIC_SEQ_CST));
        break;
    case 23: {
        struct timespec ts = {0, 30 * 1000000L};
        ssize_t n = write(st->wfd, buf, len);
        (void)n;
        nanosleep(&ts, NULL);
        rc = driver_select(st->port, ev(st->rfd), ERL_DRV_READ, 0);
        snprintf(text, sizeof text, "%d", rc);
        break;
    }
    case 24:
        snprintf(text, sizeof text, "%d", st->rfd);
        break;
    case 25:
        st->fail_after_read = 1;
        snprintf(text, sizeof text, "ok");
        break;
    case 27:
        close(st->rfd);
        snprintf(text, sizeof text, "closed");
        break;
    case 26: {
        ErlDrvMonitor monitor;
        rc = driver_monitor_process(st->port, driver_caller(st->port), &monitor);
        snprintf(text, sizeof text, "%d", rc);
        break;
    }
    case 22:
        rc = driver_select(st->port, ev(shared_fd), ERL_DRV_USE, 0);
        snprintf(text, sizeof text, "%d %lu", rc, stops() - before);
        break;
    case 21:
        st->close_on_eof = 1;
        snprintf(text, sizeof text, "ok");
        break;
    case 20:
        st->sleep_ms = arg_number(buf, len);
        snprintf(text, sizeof text, "ok");
        break;
    default:
        return -1;
    }
    return reply(rbuf, rlen, text);
}

static ErlDrvEntry select_entry = {
    .start = select_start,
    .stop = select_stop,
    .ready_input = select_ready_input,
    .ready_output = select_ready_output,
    .driver_name = "select_drv",
    .control = select_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING,
    .stop_select = select_stop_select,
};

DRIVER_INIT(select_drv)
{
    return &select_entry;
}
