/* A log of the labels of stopped ports, shared by the example drivers that show which ports
 * stopped (create_port_drv, init_ack_drv).
 *
 * Under a spin lock rather than an ErlDrvMutex made in init: a library's statics are shared
 * by every runtime of a process that loads it, so one runtime's finish would destroy a lock
 * another still uses; and with port-level locking, ports stop in parallel. */
#ifndef DDLL_EXAMPLE_STOP_LOG_H
#define DDLL_EXAMPLE_STOP_LOG_H

#include <stdio.h>
#include <string.h>

#define STOP_LOG_MAX 512

static int stop_lock;
static char stop_log[STOP_LOG_MAX];

static inline void lock_stops(void)
{
    while (__atomic_exchange_n(&stop_lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static inline void unlock_stops(void)
{
    __atomic_store_n(&stop_lock, 0, __ATOMIC_RELEASE);
}

/* Appends `label` (space-separated); the caller holds the lock. A full log drops it. */
static inline void log_stop_locked(const char *label)
{
    if (strlen(stop_log) + strlen(label) + 2 < STOP_LOG_MAX) {
        if (stop_log[0] != '\0')
            strcat(stop_log, " ");
        strcat(stop_log, label);
    }
}

/* Appends `label` to the log. */
static inline void log_stop(const char *label)
{
    lock_stops();
    log_stop_locked(label);
    unlock_stops();
}

/* Copies the log into `out` (STOP_LOG_MAX bytes) and empties it. */
static inline void take_stop_log(char *out)
{
    lock_stops();
    snprintf(out, STOP_LOG_MAX, "%s", stop_log);
    stop_log[0] = '\0';
    unlock_stops();
}

#endif
