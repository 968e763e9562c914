/*
 * create_port_drv: ports created by a driver (driver_create_port).
 *
 * Every port has a label: "open" for a port made by open_port, the name
 * given for a port the driver created (its drv_data is a fresh state with
 * that label; start is not called for it). output (port_command) echoes
 * the data to the port's owner with driver_output.
 *
 * control (port_control/3); NAME is the data (the new port's name and
 * label); the reply is text:
 *   1 NAME -> create a port owned by driver_caller: "ok", "invalid" for
 *             the runtime's invalid port, "null" for NULL. The new port
 *             then sends {NewPort, created, NAME} (to its owner).
 *   2 NAME -> the same, owned by driver_connected
 *   3      -> remember driver_caller (for 4): "ok"
 *   4 NAME -> the same as 1, owned by the remembered process
 *   5 NAME -> the same as 1, "owned" by an atom (no pid)
 *   6 NAME -> the same as 1, called from a driver thread (joined before
 *             the reply)
 *   7 NAME -> the same as 1 with the handle of the port stopped last as the
 *             creator (a dead handle), or "none" before any port stopped
 *   8 NAME -> the same as 1, then driver_enq of 3 bytes on the new port,
 *             driver_sizeq, driver_deq of them: "ok SIZEQ" (3 when the
 *             creator may use the new port's queue, as the documentation
 *             says it may until its callback returns)
 *   9      -> this port's label
 *  10 ATOM -> driver_failure_atom(port, ATOM): "ok"
 *  11      -> the labels of the ports stopped since the last 11, oldest
 *             first, separated by spaces (empty: none)
 *  12 NAME -> "ok", and a 0 ms timer whose timeout creates a port owned by
 *             driver_connected, as 2 does (a callback the runtime runs on its
 *             own, as a listening socket's ready_input creates the port of an
 *             accepted connection); the creator then outputs "timeout RESULT"
 *
 * The driver uses port-level locking: the new port has a lock of its own,
 * which its creator holds until its callback returns. With
 * CREATE_PORT_DRIVER_LOCKING defined (create_port_dl_drv.c) it is named
 * create_port_dl_drv and uses driver-level locking, where the new port
 * shares the driver's lock (BEAM 25 deadlocks there: driver_create_port
 * takes the driver lock its caller already holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"
#include "reply.h"
#include "stop_log.h"

#ifdef CREATE_PORT_DRIVER_LOCKING
#define DRV_NAME "create_port_dl_drv"
#define DRV_FLAGS 0
#else
#define DRV_NAME "create_port_drv"
#define DRV_FLAGS ERL_DRV_FLAG_USE_PORT_LOCKING
#endif

#define LABEL_MAX 32

typedef struct {
    ErlDrvPort port;
    char label[LABEL_MAX];
    ErlDrvTermData remembered;
    char pending[LABEL_MAX]; /* the name for the timeout to create (12) */
} PortState;

/* The last stopped handle, under the stop log's lock (stop_log.h). */
static ErlDrvPort last_stopped;
static int have_stopped;

static PortState *new_state(const char *label, size_t len)
{
    PortState *st = driver_alloc(sizeof(PortState));
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    if (len >= LABEL_MAX)
        len = LABEL_MAX - 1;
    memcpy(st->label, label, len);
    st->label[len] = '\0';
    return st;
}

static ErlDrvData create_port_start(ErlDrvPort port, char *command)
{
    PortState *st = new_state("open", 4);
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    return (ErlDrvData)st;
}

static void create_port_stop(ErlDrvData data)
{
    PortState *st = (PortState *)data;
    lock_stops();
    log_stop_locked(st->label);
    last_stopped = st->port;
    have_stopped = 1;
    unlock_stops();
    driver_free(st);
}

static void create_port_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    PortState *st = (PortState *)data;
    driver_output(st->port, buf, len);
}

/* The runtime's invalid port (ERTS_INVALID_ERL_DRV_PORT). */
#define INVALID_PORT ((ErlDrvPort)(ErlDrvSInt)-1)

/* driver_create_port with a fresh state labelled NAME; on success the new
 * port announces itself to its owner. Returns the reply text. */
static const char *create(ErlDrvPort creator, ErlDrvTermData owner,
                          const char *name, size_t len, ErlDrvPort *created)
{
    PortState *st = new_state(name, len);
    ErlDrvPort new_port;
    if (st == NULL)
        return "enomem";
    new_port = driver_create_port(creator, owner, st->label, (ErlDrvData)st);
    *created = new_port;
    if (new_port == NULL || new_port == INVALID_PORT) {
        driver_free(st);
        return new_port == NULL ? "null" : "invalid";
    }
    st->port = new_port;
    {
        ErlDrvTermData spec[] = {
            ERL_DRV_PORT, driver_mk_port(new_port),
            ERL_DRV_ATOM, driver_mk_atom("created"),
            ERL_DRV_STRING, (ErlDrvTermData)st->label, strlen(st->label),
            ERL_DRV_TUPLE, 3,
        };
        erl_drv_output_term(driver_mk_port(new_port), spec, sizeof spec / sizeof spec[0]);
    }
    return "ok";
}

typedef struct {
    ErlDrvPort creator;
    ErlDrvTermData owner;
    const char *name;
    size_t len;
    const char *result;
} ThreadCreate;

static void *thread_main(void *arg)
{
    ThreadCreate *tc = (ThreadCreate *)arg;
    ErlDrvPort created;
    tc->result = create(tc->creator, tc->owner, tc->name, tc->len, &created);
    return NULL;
}

static ErlDrvSSizeT create_port_control(ErlDrvData data, unsigned int command,
                                        char *buf, ErlDrvSizeT len,
                                        char **rbuf, ErlDrvSizeT rlen)
{
    PortState *st = (PortState *)data;
    char text[STOP_LOG_MAX];
    ErlDrvPort created;
    switch (command) {
    case 1:
        return reply(rbuf, rlen, create(st->port, driver_caller(st->port), buf, len, &created));
    case 2:
        return reply(rbuf, rlen,
                     create(st->port, driver_connected(st->port), buf, len, &created));
    case 3:
        st->remembered = driver_caller(st->port);
        return reply(rbuf, rlen, "ok");
    case 4:
        return reply(rbuf, rlen, create(st->port, st->remembered, buf, len, &created));
    case 5:
        return reply(rbuf, rlen,
                     create(st->port, driver_mk_atom("not_a_pid"), buf, len, &created));
    case 6: {
        ThreadCreate tc = {st->port, driver_caller(st->port), buf, len, "not run"};
        ErlDrvTid tid;
        if (erl_drv_thread_create("create_port_drv", &tid, thread_main, &tc, NULL) != 0)
            return reply(rbuf, rlen, "no thread");
        erl_drv_thread_join(tid, NULL);
        return reply(rbuf, rlen, tc.result);
    }
    case 7: {
        ErlDrvPort dead;
        int have;
        lock_stops();
        dead = last_stopped;
        have = have_stopped;
        unlock_stops();
        if (!have)
            return reply(rbuf, rlen, "none");
        return reply(rbuf, rlen, create(dead, driver_caller(st->port), buf, len, &created));
    }
    case 8: {
        const char *result = create(st->port, driver_caller(st->port), buf, len, &created);
        ErlDrvSizeT size;
        if (strcmp(result, "ok") != 0)
            return reply(rbuf, rlen, result);
        driver_enq(created, "abc", 3);
        size = driver_sizeq(created);
        driver_deq(created, 3);
        return replyf(rbuf, rlen, "ok %ld", (long)(ErlDrvSSizeT)size);
    }
    case 9:
        return reply(rbuf, rlen, st->label);
    case 10: {
        char atom[LABEL_MAX];
        size_t n = len < LABEL_MAX - 1 ? len : LABEL_MAX - 1;
        memcpy(atom, buf, n);
        atom[n] = '\0';
        driver_failure_atom(st->port, atom);
        return reply(rbuf, rlen, "ok");
    }
    case 11:
        take_stop_log(text);
        return reply(rbuf, rlen, text);
    case 12: {
        size_t n = len < LABEL_MAX - 1 ? len : LABEL_MAX - 1;
        memcpy(st->pending, buf, n);
        st->pending[n] = '\0';
        driver_set_timer(st->port, 0);
        return reply(rbuf, rlen, "ok");
    }
    default:
        return -1;
    }
}

static void create_port_timeout(ErlDrvData data)
{
    PortState *st = (PortState *)data;
    ErlDrvPort created;
    char text[LABEL_MAX + 16];
    const char *result = create(st->port, driver_connected(st->port), st->pending,
                                strlen(st->pending), &created);
    snprintf(text, sizeof text, "timeout %s", result);
    driver_output(st->port, text, strlen(text));
}

static ErlDrvEntry create_port_entry = {
    .start = create_port_start,
    .stop = create_port_stop,
    .output = create_port_output,
    .driver_name = DRV_NAME,
    .control = create_port_control,
    .timeout = create_port_timeout,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
    .driver_flags = DRV_FLAGS,
};

DRIVER_INIT(create_port_drv)
{
    return &create_port_entry;
}
