/*
 * backlog_drv: the workloads of `cargo xtask backlog-bench`, the same .so under
 * BEAM and ddll.
 *
 * A port has no driver data of its own (start returns the port handle), so that
 * opening many idle ports measures what the runtime spends per port. The
 * binaries the output loops send are the driver's, made once.
 *
 * port_control(Port, Code, Arg):
 *   1 -> erl_drv_send_term to the caller of a scanner's token list: 60 tuples
 *        {Kind, Line, "text"} (Kind an atom, text a string of 2 to 12
 *        characters); the reply is empty
 *   2 -> driver_output of 64 bytes, N times (N = Arg, decimal)
 *   3 -> driver_outputv of three 64-byte binaries, N times
 *   4 -> erl_drv_output_term of {tcp, Port, [100 | Bin50]}, N times
 *   codes 2 to 4 reply the nanoseconds of CPU time the loop took, as decimal text
 *   other -> -1 (badarg)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"
#include "reply.h"

#define TOKENS 60
/* Per token: ATOM a, INT i, STRING p n, TUPLE 3; then NIL and LIST. */
#define TOKEN_SPEC (TOKENS * 9 + 3)

static ErlDrvBinary *bin64[3];
static ErlDrvBinary *bin50;
static char data64[64];

static const char *kinds[] = {"atom", "var", "string", "integer", "punct", "keyword"};
static const char *texts[] = {"ok", "Value", "hello world!", "42", "->", "case",
                              "foo_bar", "X1", "abc", "1024", "{", "end"};

static int backlog_init(void)
{
    int i;
    for (i = 0; i < 3; i++) {
        bin64[i] = driver_alloc_binary(64);
        if (bin64[i] == NULL)
            return -1;
        memset(bin64[i]->orig_bytes, 'a' + i, 64);
    }
    bin50 = driver_alloc_binary(50);
    if (bin50 == NULL)
        return -1;
    memset(bin50->orig_bytes, 'b', 50);
    memset(data64, 'x', sizeof data64);
    return 0;
}

static void backlog_finish(void)
{
    int i;
    for (i = 0; i < 3; i++)
        driver_free_binary(bin64[i]);
    driver_free_binary(bin50);
}

static ErlDrvData backlog_start(ErlDrvPort port, char *command)
{
    (void)command;
    return (ErlDrvData)port;
}

/* The calling thread's CPU time: on a shared machine, wall time would also count the
 * turns of other programs (the loops run on one thread and never wait). */
static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int send_tokens(ErlDrvPort port)
{
    ErlDrvTermData spec[TOKEN_SPEC];
    int n = 0, i;
    for (i = 0; i < TOKENS; i++) {
        const char *text = texts[i % 12];
        spec[n++] = ERL_DRV_ATOM;
        spec[n++] = driver_mk_atom((char *)kinds[i % 6]);
        spec[n++] = ERL_DRV_INT;
        spec[n++] = (ErlDrvTermData)(1 + i / 4);
        spec[n++] = ERL_DRV_STRING;
        spec[n++] = (ErlDrvTermData)text;
        spec[n++] = (ErlDrvTermData)strlen(text);
        spec[n++] = ERL_DRV_TUPLE;
        spec[n++] = 3;
    }
    spec[n++] = ERL_DRV_NIL;
    spec[n++] = ERL_DRV_LIST;
    spec[n++] = TOKENS + 1;
    return erl_drv_send_term(driver_mk_port(port), driver_caller(port), spec, n);
}

static long long output_loop(ErlDrvPort port, unsigned int code, long n)
{
    SysIOVec iov[3];
    ErlIOVec ev;
    ErlDrvTermData tcp[12];
    ErlDrvTermData port_id = driver_mk_port(port);
    long long start;
    long i;
    int k;
    for (k = 0; k < 3; k++) {
        iov[k].iov_base = bin64[k]->orig_bytes;
        iov[k].iov_len = 64;
    }
    ev.vsize = 3;
    ev.size = 3 * 64;
    ev.iov = iov;
    ev.binv = bin64;
    tcp[0] = ERL_DRV_ATOM; tcp[1] = driver_mk_atom("tcp");
    tcp[2] = ERL_DRV_PORT; tcp[3] = port_id;
    tcp[4] = ERL_DRV_INT; tcp[5] = 100;
    tcp[6] = ERL_DRV_BINARY; tcp[7] = (ErlDrvTermData)bin50; tcp[8] = 50; tcp[9] = 0;
    tcp[10] = ERL_DRV_LIST; tcp[11] = 2;
    start = now_ns();
    switch (code) {
    case 2:
        for (i = 0; i < n; i++)
            driver_output(port, data64, sizeof data64);
        break;
    case 3:
        for (i = 0; i < n; i++)
            driver_outputv(port, NULL, 0, &ev, 0);
        break;
    default: {
        ErlDrvTermData spec[14];
        memcpy(spec, tcp, sizeof tcp);
        spec[12] = ERL_DRV_TUPLE;
        spec[13] = 3;
        for (i = 0; i < n; i++)
            erl_drv_output_term(port_id, spec, 14);
        break;
    }
    }
    return now_ns() - start;
}

static ErlDrvSSizeT backlog_control(ErlDrvData data, unsigned int code, char *buf,
                                    ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvPort port = (ErlDrvPort)data;
    char arg[32];
    if (len >= sizeof arg)
        return -1;
    memcpy(arg, buf, len);
    arg[len] = 0;
    switch (code) {
    case 1:
        send_tokens(port);
        return 0;
    case 2:
    case 3:
    case 4:
        return replyf(rbuf, rlen, "%lld", output_loop(port, code, atol(arg)));
    default:
        return -1;
    }
}

static ErlDrvEntry backlog_driver_entry = {
    .init = backlog_init,
    .start = backlog_start,
    .finish = backlog_finish,
    .driver_name = "backlog_drv",
    .control = backlog_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(backlog_drv)
{
    return &backlog_driver_entry;
}
