/*
 * probe_drv: a driver that shows its own life cycle, for the erl_ddll scenarios.
 *
 * Built three ways from this one file, all naming the driver "probe_drv":
 *   probe_drv.c          version 1
 *   probe_v2_drv.c       version 2 (#define PROBE_VERSION 2, then includes this file)
 *   probe_badinit_drv.c  the entry's init fails (#define PROBE_FAIL_INIT)
 * A scenario copies one of them to TmpDir/probe_drv.so, loads it, replaces the
 * file with another and reloads: which code runs afterwards tells whether the
 * old library was really closed before the new one was opened.
 *
 * control (port_control/3), replies are lists:
 *   1 -> "vV/N": V = version, N = how often init ran in this mapping of the
 *        library (static data: 1 after every fresh dlopen)
 *   2 -> driver_lock_driver(port) -> "0" or "-1"
 *   3 -> add_driver_entry(&probe_linked entry) -> "ok"
 *   4 -> remove_driver_entry(&probe_linked entry) -> "1", "0" or "-1"
 *   5 -> remove_driver_entry(this driver's own entry) -> "-1" (dynamic driver)
 *   6 -> start a "straggler" thread that sleeps 100 ms, then counts itself in
 *        this library's static data and returns; nobody joins it -> "ok"
 *   7 -> how many stragglers have finished in this mapping -> "N"
 *   other -> -1 (badarg)
 * output: echoes the bytes back, prefixed with "vV:".
 *
 * The entry added by control 3 is "probe_linked", a driver without a library
 * handle of its own (a linked-in driver, as erl_ddll sees it); its ports answer
 * control 1 with "linked". It lives in this library, so a scenario removes it
 * (control 4) before unloading probe_drv.
 *
 * Every callback aborts the process if it comes after finish (a runtime bug).
 *
 * init starts a "keeper" thread that waits until finish stops and joins it:
 * the pattern of drivers with a thread per driver (finish must run even while
 * the thread lives, or the driver would never unload).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"

#ifndef PROBE_VERSION
#define PROBE_VERSION 1
#endif

static int inits; /* init calls in this mapping of the library */
static volatile int finished; /* finish ran: no callback may come after it */

/* A callback after finish is a runtime bug: make it loud. */
static void check_alive(void)
{
    if (finished)
        abort();
}

/* The keeper thread: started by init, stopped and joined by finish. */
static ErlDrvMutex *keeper_lock;
static ErlDrvCond *keeper_wake;
static int keeper_stop;
static ErlDrvTid keeper_tid;

static void *keeper_main(void *arg)
{
    (void)arg;
    erl_drv_mutex_lock(keeper_lock);
    while (!keeper_stop)
        erl_drv_cond_wait(keeper_wake, keeper_lock);
    erl_drv_mutex_unlock(keeper_lock);
    return NULL;
}

static int keeper_start(void)
{
    keeper_stop = 0;
    keeper_lock = erl_drv_mutex_create("probe_keeper");
    keeper_wake = erl_drv_cond_create("probe_keeper");
    if (keeper_lock == NULL || keeper_wake == NULL)
        return -1;
    return erl_drv_thread_create("probe_keeper", &keeper_tid, keeper_main, NULL, NULL);
}

static void probe_finish(void)
{
    check_alive();
    finished = 1;
    erl_drv_mutex_lock(keeper_lock);
    keeper_stop = 1;
    erl_drv_cond_signal(keeper_wake);
    erl_drv_mutex_unlock(keeper_lock);
    erl_drv_thread_join(keeper_tid, NULL);
    erl_drv_cond_destroy(keeper_wake);
    erl_drv_mutex_destroy(keeper_lock);
}

/* Stragglers: threads that outlive their port and even the driver's unload. */
static volatile int stragglers_done;

static void *straggler_main(void *arg)
{
    struct timespec pause = {0, 100 * 1000 * 1000};
    (void)arg;
    nanosleep(&pause, NULL);
    __sync_fetch_and_add(&stragglers_done, 1);
    return NULL;
}

typedef struct {
    ErlDrvPort port;
} ProbeState;

#ifdef PROBE_FAIL_INIT
#define FAIL_INIT 1
#else
#define FAIL_INIT 0
#endif

static int probe_init(void)
{
    if (FAIL_INIT)
        return -1;
    inits++;
    return keeper_start();
}

static ErlDrvData probe_start(ErlDrvPort port, char *command)
{
    ProbeState *st = driver_alloc(sizeof(ProbeState));
    (void)command;
    check_alive();
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    return (ErlDrvData)st;
}

static void probe_stop(ErlDrvData data)
{
    check_alive();
    driver_free(data);
}

static void probe_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    ProbeState *st = (ProbeState *)data;
    char prefix[8];
    int n = snprintf(prefix, sizeof prefix, "v%d:", PROBE_VERSION);
    check_alive();
    driver_output2(st->port, prefix, (ErlDrvSizeT)n, buf, len);
}

/* Copies `text` into the runtime's reply buffer (every reply here is short). */
static ErlDrvSSizeT reply(const char *text, char **rbuf, ErlDrvSizeT rlen)
{
    size_t len = strlen(text);
    if (len > rlen)
        return -1;
    memcpy(*rbuf, text, len);
    return (ErlDrvSSizeT)len;
}

static ErlDrvSSizeT probe_linked_control(ErlDrvData data, unsigned int command, char *buf,
                                         ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    (void)data;
    (void)buf;
    (void)len;
    return command == 1 ? reply("linked", rbuf, rlen) : -1;
}

static ErlDrvEntry probe_linked_entry = {
    .start = probe_start,
    .stop = probe_stop,
    .driver_name = "probe_linked",
    .control = probe_linked_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

static ErlDrvEntry probe_entry;

static ErlDrvSSizeT probe_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    ProbeState *st = (ProbeState *)data;
    char text[32];
    (void)buf;
    (void)len;
    check_alive();

    switch (command) {
    case 1:
        snprintf(text, sizeof text, "v%d/%d", PROBE_VERSION, inits);
        return reply(text, rbuf, rlen);
    case 2:
        snprintf(text, sizeof text, "%d", driver_lock_driver(st->port));
        return reply(text, rbuf, rlen);
    case 3:
        add_driver_entry(&probe_linked_entry);
        return reply("ok", rbuf, rlen);
    case 4:
        snprintf(text, sizeof text, "%d", remove_driver_entry(&probe_linked_entry));
        return reply(text, rbuf, rlen);
    case 5:
        snprintf(text, sizeof text, "%d", remove_driver_entry(&probe_entry));
        return reply(text, rbuf, rlen);
    case 6: {
        ErlDrvTid tid;
        if (erl_drv_thread_create("probe_straggler", &tid, straggler_main, NULL, NULL) != 0)
            return -1;
        return reply("ok", rbuf, rlen);
    }
    case 7:
        snprintf(text, sizeof text, "%d", stragglers_done);
        return reply(text, rbuf, rlen);
    default:
        return -1;
    }
}

static ErlDrvEntry probe_entry = {
    .init = probe_init,
    .start = probe_start,
    .stop = probe_stop,
    .output = probe_output,
    .driver_name = "probe_drv",
    .finish = probe_finish,
    .control = probe_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(probe_drv)
{
    return &probe_entry;
}
