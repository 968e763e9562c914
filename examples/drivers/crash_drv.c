/*
 * crash_drv: a driver that fails on purpose, for testing crash isolation
 * (ddll script --isolate, ddll test). Never load it in process: it takes its
 * host down.
 *
 * open_port({spawn_driver, "crash_drv HOW WHERE"}, Opts)
 *   HOW:   segv (a write through NULL), abort, exit (exit(3)), hang (sleeps
 *          forever), fpe (raise(SIGFPE)), forksegv (starts `sleep 20`, which
 *          inherits every descriptor the driver's process has open but its
 *          output, as a driver spawning a program without closing them does;
 *          then segv), forkhold (forks a process that keeps every
 *          descriptor but its output for 20 s without starting a program; then
 *          segv),
 *          none (never fails)
 *   WHERE: the callback that fails:
 *     start       -> in start itself
 *     output      -> in output (port_command)
 *     control     -> in control (port_control)
 *     call        -> in call (port_call)
 *     timeout     -> in timeout, after a 10 ms timer set by port_command
 *     ready_async -> in ready_async, after a job queued by port_command
 *     ready_input -> in ready_input, for a pipe made readable by port_command
 *     thread      -> in a driver thread started by port_command
 * Until it fails, output echoes the bytes, control and call reply nothing.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
    char how[16];
    char where[16];
    int pipe[2];
    ErlDrvTid tid;
} crash_data;

static void segv(void)
{
    volatile int *nowhere = NULL;
    *nowhere = 1;
}

static void fail(const char *how)
{
    if (strcmp(how, "forksegv") == 0) {
        pid_t child = fork();
        if (child == 0) {
            /* Not the output: whoever reads it would wait for `sleep`. */
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execlp("sleep", "sleep", "20", (char *)NULL);
            _exit(127);
        }
        segv();
    } else if (strcmp(how, "forkhold") == 0) {
        if (fork() == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            sleep(20);
            _exit(0);
        }
        segv();
    } else if (strcmp(how, "segv") == 0) {
        segv();
    } else if (strcmp(how, "abort") == 0) {
        abort();
    } else if (strcmp(how, "exit") == 0) {
        exit(3);
    } else if (strcmp(how, "fpe") == 0) {
        raise(SIGFPE);
    } else if (strcmp(how, "hang") == 0) {
        for (;;)
            pause();
    }
}

static void fail_at(crash_data *d, const char *where)
{
    if (strcmp(d->where, where) == 0)
        fail(d->how);
}

static ErlDrvData crash_start(ErlDrvPort port, char *command)
{
    crash_data *d = driver_alloc(sizeof *d);
    memset(d, 0, sizeof *d);
    d->port = port;
    d->pipe[0] = d->pipe[1] = -1;
    const char *args = strchr(command, ' ');
    if (args == NULL || sscanf(args, " %15s %15s", d->how, d->where) != 2) {
        driver_free(d);
        return ERL_DRV_ERROR_BADARG;
    }
    fail_at(d, "start");
    return (ErlDrvData)d;
}

static void crash_stop(ErlDrvData data)
{
    crash_data *d = (crash_data *)data;
    if (d->pipe[0] >= 0) {
        driver_select(d->port, (ErlDrvEvent)(long)d->pipe[0], ERL_DRV_READ, 0);
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    driver_free(d);
}

static void async_job(void *arg)
{
    (void)arg;
}

static void *thread_main(void *arg)
{
    fail((const char *)arg);
    return NULL;
}

static void crash_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    crash_data *d = (crash_data *)data;
    fail_at(d, "output");
    if (strcmp(d->where, "timeout") == 0) {
        driver_set_timer(d->port, 10);
    } else if (strcmp(d->where, "ready_async") == 0) {
        driver_async(d->port, NULL, async_job, NULL, NULL);
    } else if (strcmp(d->where, "ready_input") == 0 && d->pipe[0] < 0) {
        if (pipe(d->pipe) == 0) {
            driver_select(d->port, (ErlDrvEvent)(long)d->pipe[0], ERL_DRV_READ | ERL_DRV_USE, 1);
            if (write(d->pipe[1], "x", 1) != 1)
                driver_failure_atom(d->port, "pipe");
        }
    } else if (strcmp(d->where, "thread") == 0) {
        erl_drv_thread_create("crash_thread", &d->tid, thread_main, d->how, NULL);
    }
    driver_output(d->port, buf, len);
}

static ErlDrvSSizeT crash_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    (void)command; (void)buf; (void)len; (void)rbuf; (void)rlen;
    fail_at((crash_data *)data, "control");
    return 0;
}

static ErlDrvSSizeT crash_call(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                               unsigned int *flags)
{
    (void)command; (void)buf; (void)len; (void)flags;
    fail_at((crash_data *)data, "call");
    /* The atom ok, in the external term format. */
    static const char ok[] = {(char)131, 100, 0, 2, 'o', 'k'};
    if (rlen < sizeof ok)
        return -1;
    memcpy(*rbuf, ok, sizeof ok);
    return sizeof ok;
}

static void crash_timeout(ErlDrvData data)
{
    fail_at((crash_data *)data, "timeout");
}

static void crash_ready_async(ErlDrvData data, ErlDrvThreadData job)
{
    (void)job;
    fail_at((crash_data *)data, "ready_async");
}

static void crash_ready_input(ErlDrvData data, ErlDrvEvent event)
{
    (void)event;
    fail_at((crash_data *)data, "ready_input");
}

static void crash_stop_select(ErlDrvEvent event, void *reserved)
{
    (void)event; (void)reserved;
}

static ErlDrvEntry crash_entry = {
    .start = crash_start,
    .stop = crash_stop,
    .output = crash_output,
    .ready_input = crash_ready_input,
    .driver_name = "crash_drv",
    .control = crash_control,
    .timeout = crash_timeout,
    .ready_async = crash_ready_async,
    .call = crash_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .stop_select = crash_stop_select,
};

DRIVER_INIT(crash_drv)
{
    return &crash_entry;
}
