/*
 * start_error_drv: start's return values, chosen by the open_port command's second word:
 *   "general"     -> ERL_DRV_ERROR_GENERAL
 *   "errno N"     -> errno = N, ERL_DRV_ERROR_ERRNO
 *   "badarg"      -> ERL_DRV_ERROR_BADARG
 *   "async"       -> opens, with a timer of 10 ms and an async job set up in start (the driver
 *                    has no timeout and no ready_async callback)
 *   anything else -> opens
 * stop counts the ports it stopped; port_control 1 replies "stops S async_free F" (the
 * number of stop calls and of async_free calls so far, over every port of the driver).
 * The driver has no ready_input, ready_output or stop_select either (one port at a time):
 *   port_control 2 -> makes a pipe, selects its read end for reading (ERL_DRV_USE) and writes
 *                     a byte into it: "select RC"
 *   port_control 3 -> selects the pipe's write end (always writable) for writing: "select RC"
 *   port_control 4 -> deselects both ends with ERL_DRV_USE_NO_CALLBACK and closes them:
 *                     "deselect RC1 RC2"
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

static int stops;
static int async_frees;
static int pipe_fds[2] = {-1, -1};

static void async_work(void *data)
{
    (void)data;
}

static void async_free(void *data)
{
    (void)data;
    __atomic_add_fetch(&async_frees, 1, __ATOMIC_SEQ_CST);
}

static ErlDrvData start_error_start(ErlDrvPort port, char *command)
{
    const char *arg = strchr(command, ' ');
    arg = arg == NULL ? "" : arg + 1;
    if (strcmp(arg, "general") == 0)
        return ERL_DRV_ERROR_GENERAL;
    if (strcmp(arg, "badarg") == 0)
        return ERL_DRV_ERROR_BADARG;
    if (strncmp(arg, "errno ", 6) == 0) {
        errno = atoi(arg + 6);
        return ERL_DRV_ERROR_ERRNO;
    }
    if (strcmp(arg, "async") == 0) {
        driver_set_timer(port, 10);
        driver_async(port, NULL, async_work, NULL, async_free);
    }
    return (ErlDrvData)port;
}

static void start_error_stop(ErlDrvData data)
{
    (void)data;
    __atomic_add_fetch(&stops, 1, __ATOMIC_SEQ_CST);
}

static ErlDrvEvent event_of(int fd)
{
    return (ErlDrvEvent)(ErlDrvSInt)fd;
}

static ErlDrvSSizeT start_error_control(ErlDrvData data, unsigned int command, char *buf,
                                        ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvPort port = (ErlDrvPort)data;
    int rc, rc2;
    (void)buf;
    (void)len;
    switch (command) {
    case 1:
        return replyf(rbuf, rlen, "stops %d async_free %d",
                      __atomic_load_n(&stops, __ATOMIC_SEQ_CST),
                      __atomic_load_n(&async_frees, __ATOMIC_SEQ_CST));
    case 2:
        if (pipe(pipe_fds) != 0)
            return -1;
        rc = driver_select(port, event_of(pipe_fds[0]), ERL_DRV_READ | ERL_DRV_USE, 1);
        if (write(pipe_fds[1], "x", 1) != 1)
            return -1;
        return replyf(rbuf, rlen, "select %d", rc);
    case 3:
        rc = driver_select(port, event_of(pipe_fds[1]), ERL_DRV_WRITE | ERL_DRV_USE, 1);
        return replyf(rbuf, rlen, "select %d", rc);
    case 4:
        rc = driver_select(port, event_of(pipe_fds[0]), ERL_DRV_READ | ERL_DRV_USE_NO_CALLBACK, 0);
        rc2 = driver_select(port, event_of(pipe_fds[1]), ERL_DRV_WRITE | ERL_DRV_USE_NO_CALLBACK,
                            0);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        pipe_fds[0] = pipe_fds[1] = -1;
        return replyf(rbuf, rlen, "deselect %d %d", rc, rc2);
    default:
        return -1;
    }
}

static ErlDrvEntry start_error_driver_entry = {
    .start = start_error_start,
    .stop = start_error_stop,
    .driver_name = "start_error_drv",
    .control = start_error_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(start_error_drv)
{
    return &start_error_driver_entry;
}
