/*
 * term_drv: sends terms in the driver term format, one spec per case, and
 * reports what the runtime returned.
 *
 * port_control(Port, Api, CaseName) runs the case CaseName through Api and
 * replies with the call's return value as decimal text ("1" delivered, "0"
 * not delivered, "-1" rejected):
 *   1 -> erl_drv_output_term(driver_mk_port(port), ...)   (to the owner)
 *   2 -> driver_output_term(port, ...)                    (old form)
 *   3 -> erl_drv_send_term(driver_mk_port(port), caller, ...)
 *   4 -> driver_send_term(port, caller, ...)              (old form)
 *   5 -> erl_drv_send_term to the remembered process (see 6)
 *   6 -> remember driver_caller(port) (the process calling port_control);
 *        CaseName is ignored, replies "ok"
 *   7 -> erl_drv_output_term through the port id remembered by the last
 *        port of this driver that stopped (a port that no longer exists)
 *   8 -> the return value of the erl_drv_output_term call made by the last
 *        port that stopped, from inside its stop callback (port closing)
 *   9 -> erl_drv_send_term to a receiver that is no pid (an atom)
 *   10 -> benchmark: CaseName is a count N; runs erl_drv_output_term of the
 *         "tcp" case N times and replies with the elapsed nanoseconds
 *   11 -> driver_failure_atom(port, CaseName): the port exits; its stop callback
 *         still sends the "atom" case to the owner (and driver_output "bye"); the
 *         failing callback then tries erl_drv_output_term of "atom" once more
 *   12 -> the return value of that last call (the port has gone)
 *
 * port_command(Port, CaseName) runs the case through driver_output_term and
 * then sends {term_drv_rc, Rc} to the caller with driver_send_term, so the
 * command path (and driver_caller set by port_command) is covered too.
 *
 * Unknown case names reply "unknown_case". The cases are the table `cases`
 * below: one term of each of the 17 term types, the examples of the
 * erl_driver documentation, and every way of getting a spec rejected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erl_driver.h"

/* The old forms are deprecated in OTP's header; this driver tests them on purpose. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

typedef struct {
    ErlDrvPort port;
    ErlDrvTermData port_id;
    ErlDrvBinary *bin50; /* 50 bytes: 0, 1, ..., 49 */
} TermState;

/* What the last stopped port left behind (cases 7 and 8). */
static ErlDrvTermData stale_port_id;
static int stop_rc = 99;
static int after_failure_rc = 99;
/* The process remembered by control 6 (case 5). */
static ErlDrvTermData remembered;

#define MAX_SPEC 64

typedef struct {
    ErlDrvTermData spec[MAX_SPEC];
    int len;
} Spec;

static void put(Spec *s, ErlDrvTermData v)
{
    if (s->len < MAX_SPEC)
        s->spec[s->len++] = v;
}

#define T(v) put(s, (ErlDrvTermData)(v))

static char abc[] = "abc";
static char s123[] = "123";
static char buf[] = "buf";
/* {ok, "ab"} in the external term format. */
static char ext_ok[] = {(char)131, 104, 2, 100, 0, 2, 'o', 'k', 107, 0, 2, 'a', 'b'};
static char ext_bad_version[] = {(char)130, 97, 1};
static char ext_bad_tag[] = {(char)131, (char)255};
static char ext_truncated[] = {(char)131, 104, 2, 97};
/* #{k => 1, k => 2}: well-formed bytes, but a map with a duplicate key. */
static char ext_duplicate_keys[] = {(char)131, 116, 0, 0, 0, 2, 100, 0, 1, 'k', 97, 1,
                                    100, 0, 1, 'k', 97, 2};
static double half = 3.5;
/* volatile: computed at run time, no libm needed */
static volatile double zero = 0.0;
static double nan_value;
static double inf_value;
static ErlDrvSInt64 int64_min = (ErlDrvSInt64)(-9223372036854775807LL - 1);
static ErlDrvUInt64 uint64_max = ~(ErlDrvUInt64)0;

/* Fills `s` with the spec of case `name`; 0 if there is no such case. */
static int build_case(TermState *st, const char *name, Spec *s)
{
    ErlDrvTermData port = st->port_id;
    ErlDrvTermData owner = driver_connected(st->port);
    s->len = 0;
    nan_value = zero / zero;
    inf_value = 1.0 / zero;

    /* One term of each type. */
    if (!strcmp(name, "nil")) {
        T(ERL_DRV_NIL);
    } else if (!strcmp(name, "atom")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("hello"));
    } else if (!strcmp(name, "atom_latin1")) {
        /* driver_mk_atom reads Latin-1: these UTF-8 bytes of "é" are two characters */
        T(ERL_DRV_ATOM); T(driver_mk_atom("\xc3\xa9t\xe9"));
    } else if (!strcmp(name, "atom_long")) {
        /* 300 characters: cut to the first 255 */
        char long_name[301];
        memset(long_name, 'a', 300);
        long_name[299] = 'z';
        long_name[300] = 0;
        T(ERL_DRV_ATOM); T(driver_mk_atom(long_name));
    } else if (!strcmp(name, "int")) {
        T(ERL_DRV_INT); T((ErlDrvSInt)-42);
    } else if (!strcmp(name, "int_big")) {
        /* beyond BEAM's small integers: a bignum on the heap */
        T(ERL_DRV_INT); T((ErlDrvSInt)(-((ErlDrvSInt)1 << 62)));
    } else if (!strcmp(name, "port")) {
        T(ERL_DRV_PORT); T(port);
    } else if (!strcmp(name, "binary")) {
        T(ERL_DRV_BINARY); T(st->bin50); T(5); T(10);
    } else if (!strcmp(name, "binary_empty")) {
        T(ERL_DRV_BINARY); T(st->bin50); T(0); T(50);
    } else if (!strcmp(name, "string")) {
        T(ERL_DRV_STRING); T(abc); T(3);
    } else if (!strcmp(name, "string_empty")) {
        T(ERL_DRV_STRING); T(abc); T(0);
    } else if (!strcmp(name, "tuple")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("a"));
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_TUPLE); T(2);
    } else if (!strcmp(name, "tuple_empty")) {
        T(ERL_DRV_TUPLE); T(0);
    } else if (!strcmp(name, "list")) {
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_INT); T(2);
        T(ERL_DRV_INT); T(3);
        T(ERL_DRV_LIST); T(3); /* improper: the last element is the tail */
    } else if (!strcmp(name, "list_of_one")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("only_tail"));
        T(ERL_DRV_LIST); T(1);
    } else if (!strcmp(name, "string_cons")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("tail"));
        T(ERL_DRV_STRING_CONS); T(abc); T(3);
    } else if (!strcmp(name, "pid")) {
        T(ERL_DRV_PID); T(owner);
    } else if (!strcmp(name, "caller_pid")) {
        T(ERL_DRV_PID); T(driver_caller(st->port));
    } else if (!strcmp(name, "float")) {
        T(ERL_DRV_FLOAT); T(&half);
    } else if (!strcmp(name, "ext2term")) {
        T(ERL_DRV_EXT2TERM); T(ext_ok); T(sizeof ext_ok);
    } else if (!strcmp(name, "uint")) {
        T(ERL_DRV_UINT); T(~(ErlDrvUInt)0);
    } else if (!strcmp(name, "buf2binary")) {
        T(ERL_DRV_BUF2BINARY); T(buf); T(3);
    } else if (!strcmp(name, "buf2binary_empty")) {
        T(ERL_DRV_BUF2BINARY); T(NULL); T(0);
    } else if (!strcmp(name, "int64")) {
        T(ERL_DRV_INT64); T(&int64_min);
    } else if (!strcmp(name, "uint64")) {
        T(ERL_DRV_UINT64); T(&uint64_max);
    } else if (!strcmp(name, "map")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("b"));
        T(ERL_DRV_INT); T(2);
        T(ERL_DRV_ATOM); T(driver_mk_atom("a"));
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_MAP); T(2);
    } else if (!strcmp(name, "map_empty")) {
        T(ERL_DRV_MAP); T(0);
    } else if (!strcmp(name, "map_int_float_keys")) {
        /* 1 and 1.0 are different keys */
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_ATOM); T(driver_mk_atom("int"));
        T(ERL_DRV_FLOAT); T(&half);
        T(ERL_DRV_ATOM); T(driver_mk_atom("float"));
        T(ERL_DRV_MAP); T(2);
    } else if (!strcmp(name, "map_port")) {
        /* #{port => Port}: an identifier inside a map */
        T(ERL_DRV_ATOM); T(driver_mk_atom("port"));
        T(ERL_DRV_PORT); T(port);
        T(ERL_DRV_MAP); T(1);
    } else if (!strcmp(name, "nested")) {
        /* {[x], #{k => {}}, <<"buf">>} */
        T(ERL_DRV_ATOM); T(driver_mk_atom("x"));
        T(ERL_DRV_NIL);
        T(ERL_DRV_LIST); T(2);
        T(ERL_DRV_ATOM); T(driver_mk_atom("k"));
        T(ERL_DRV_TUPLE); T(0);
        T(ERL_DRV_MAP); T(1);
        T(ERL_DRV_BUF2BINARY); T(buf); T(3);
        T(ERL_DRV_TUPLE); T(3);
    }
    /* The examples of the erl_driver documentation. */
    else if (!strcmp(name, "tcp")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("tcp"));
        T(ERL_DRV_PORT); T(port);
        T(ERL_DRV_INT); T(100);
        T(ERL_DRV_BINARY); T(st->bin50); T(50); T(0);
        T(ERL_DRV_LIST); T(2);
        T(ERL_DRV_TUPLE); T(3);
    } else if (!strcmp(name, "x_abc_y")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("x"));
        T(ERL_DRV_STRING); T(abc); T(3);
        T(ERL_DRV_ATOM); T(driver_mk_atom("y"));
        T(ERL_DRV_NIL);
        T(ERL_DRV_LIST); T(4);
    } else if (!strcmp(name, "abc123")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_STRING_CONS); T(s123); T(3);
        T(ERL_DRV_STRING_CONS); T(abc); T(3);
    }
    /* Rejections: each must return -1 and send nothing. */
    else if (!strcmp(name, "unknown_tag")) {
        T(18);
    } else if (!strcmp(name, "tag_zero")) {
        T(0);
    } else if (!strcmp(name, "missing_argument")) {
        T(ERL_DRV_ATOM);
    } else if (!strcmp(name, "binary_missing_offset")) {
        T(ERL_DRV_BINARY); T(st->bin50); T(50);
    } else if (!strcmp(name, "bad_atom")) {
        T(ERL_DRV_ATOM); T(5);
    } else if (!strcmp(name, "port_as_atom")) {
        T(ERL_DRV_ATOM); T(port);
    } else if (!strcmp(name, "bad_port")) {
        T(ERL_DRV_PORT); T(driver_mk_atom("not_a_port"));
    } else if (!strcmp(name, "bad_pid")) {
        T(ERL_DRV_PID); T(port);
    } else if (!strcmp(name, "binary_null")) {
        T(ERL_DRV_BINARY); T(NULL); T(0); T(0);
    } else if (!strcmp(name, "binary_past_end")) {
        T(ERL_DRV_BINARY); T(st->bin50); T(41); T(10);
    } else if (!strcmp(name, "buf2binary_null")) {
        T(ERL_DRV_BUF2BINARY); T(NULL); T(3);
    } else if (!strcmp(name, "string_null")) {
        T(ERL_DRV_STRING); T(NULL); T(3);
    } else if (!strcmp(name, "string_negative")) {
        T(ERL_DRV_STRING); T(abc); T((ErlDrvSInt)-1);
    } else if (!strcmp(name, "string_cons_null")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_STRING_CONS); T(NULL); T(3);
    } else if (!strcmp(name, "string_cons_negative")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_STRING_CONS); T(abc); T((ErlDrvSInt)-2);
    } else if (!strcmp(name, "string_cons_empty_stack")) {
        T(ERL_DRV_STRING_CONS); T(abc); T(3);
    } else if (!strcmp(name, "list_zero")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_LIST); T(0);
    } else if (!strcmp(name, "list_negative")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_LIST); T((ErlDrvSInt)-1);
    } else if (!strcmp(name, "list_too_many")) {
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_NIL);
        T(ERL_DRV_LIST); T(3);
    } else if (!strcmp(name, "tuple_negative")) {
        T(ERL_DRV_TUPLE); T((ErlDrvSInt)-1);
    } else if (!strcmp(name, "tuple_too_many")) {
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_TUPLE); T(2);
    } else if (!strcmp(name, "map_negative")) {
        T(ERL_DRV_MAP); T((ErlDrvSInt)-1);
    } else if (!strcmp(name, "map_too_many")) {
        /* one pair needs two terms */
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_MAP); T(1);
    } else if (!strcmp(name, "map_duplicate_keys")) {
        T(ERL_DRV_ATOM); T(driver_mk_atom("k"));
        T(ERL_DRV_INT); T(1);
        T(ERL_DRV_ATOM); T(driver_mk_atom("k"));
        T(ERL_DRV_INT); T(2);
        T(ERL_DRV_MAP); T(2);
    } else if (!strcmp(name, "ext2term_null")) {
        T(ERL_DRV_EXT2TERM); T(NULL); T(3);
    } else if (!strcmp(name, "ext2term_empty")) {
        T(ERL_DRV_EXT2TERM); T(ext_ok); T(0);
    } else if (!strcmp(name, "ext2term_bad_version")) {
        T(ERL_DRV_EXT2TERM); T(ext_bad_version); T(sizeof ext_bad_version);
    } else if (!strcmp(name, "ext2term_bad_tag")) {
        T(ERL_DRV_EXT2TERM); T(ext_bad_tag); T(sizeof ext_bad_tag);
    } else if (!strcmp(name, "ext2term_truncated")) {
        T(ERL_DRV_EXT2TERM); T(ext_truncated); T(sizeof ext_truncated);
    } else if (!strcmp(name, "ext2term_duplicate_keys")) {
        T(ERL_DRV_EXT2TERM); T(ext_duplicate_keys); T(sizeof ext_duplicate_keys);
    } else if (!strcmp(name, "float_nan")) {
        T(ERL_DRV_FLOAT); T(&nan_value);
    } else if (!strcmp(name, "float_inf")) {
        T(ERL_DRV_FLOAT); T(&inf_value);
    } else if (!strcmp(name, "empty_spec")) {
        /* nothing: no term at all */
    } else if (!strcmp(name, "two_terms")) {
        T(ERL_DRV_NIL);
        T(ERL_DRV_NIL);
    } else if (!strcmp(name, "bad_after_good")) {
        /* a valid term, then garbage */
        T(ERL_DRV_NIL);
        T(ERL_DRV_ATOM); T(7);
    } else {
        return 0;
    }
    return 1;
}

static ErlDrvData term_start(ErlDrvPort port, char *command)
{
    TermState *st = driver_alloc(sizeof(TermState));
    int i;
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    st->port_id = driver_mk_port(port);
    st->bin50 = driver_alloc_binary(50);
    if (st->bin50 == NULL) {
        driver_free(st);
        return ERL_DRV_ERROR_GENERAL;
    }
    for (i = 0; i < 50; i++)
        st->bin50->orig_bytes[i] = (char)i;
    return (ErlDrvData)st;
}

static void term_stop(ErlDrvData data)
{
    TermState *st = (TermState *)data;
    Spec s;
    /* The port is closing: the runtime must not deliver this. */
    build_case(st, "atom", &s);
    stop_rc = erl_drv_output_term(st->port_id, s.spec, s.len);
    driver_output(st->port, "bye", 3);
    stale_port_id = st->port_id;
    driver_free_binary(st->bin50);
    driver_free(st);
}

/* Runs case `name` through `api`; *rc is the call's result. 0 if no such case. */
static int run_case(TermState *st, int api, const char *name, int *rc)
{
    Spec s;
    ErlDrvTermData caller = driver_caller(st->port);
    if (!build_case(st, name, &s))
        return 0;
    switch (api) {
    case 1: *rc = erl_drv_output_term(st->port_id, s.spec, s.len); break;
    case 2: *rc = driver_output_term(st->port, s.spec, s.len); break;
    case 3: *rc = erl_drv_send_term(st->port_id, caller, s.spec, s.len); break;
    case 4: *rc = driver_send_term(st->port, caller, s.spec, s.len); break;
    case 5: *rc = erl_drv_send_term(st->port_id, remembered, s.spec, s.len); break;
    case 7: *rc = erl_drv_output_term(stale_port_id, s.spec, s.len); break;
    case 9:
        *rc = erl_drv_send_term(st->port_id, driver_mk_atom("nobody"), s.spec, s.len);
        break;
    default: return 0;
    }
    return 1;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sends the "tcp" term n times; the elapsed nanoseconds. */
static long long bench(TermState *st, long n)
{
    Spec s;
    long i;
    long long start;
    build_case(st, "tcp", &s);
    start = now_ns();
    for (i = 0; i < n; i++)
        erl_drv_output_term(st->port_id, s.spec, s.len);
    return now_ns() - start;
}

static ErlDrvSSizeT reply_text(const char *text, char **rbuf, ErlDrvSizeT rlen)
{
    size_t n = strlen(text);
    char *out = *rbuf;
    if (n > rlen) {
        out = driver_alloc(n);
        if (out == NULL)
            return -1;
        *rbuf = out;
    }
    memcpy(out, text, n);
    return (ErlDrvSSizeT)n;
}

static ErlDrvSSizeT term_control(ErlDrvData data, unsigned int api, char *buf_in,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    TermState *st = (TermState *)data;
    char name[64];
    char text[32];
    int rc = 0;
    if (len >= sizeof name)
        return -1;
    memcpy(name, buf_in, len);
    name[len] = 0;
    switch (api) {
    case 6:
        remembered = driver_caller(st->port);
        return reply_text("ok", rbuf, rlen);
    case 8:
        snprintf(text, sizeof text, "%d", stop_rc);
        return reply_text(text, rbuf, rlen);
    case 10:
        snprintf(text, sizeof text, "%lld", bench(st, atol(name)));
        return reply_text(text, rbuf, rlen);
    case 11: {
        /* stop runs inside driver_failure_atom and frees st: keep what is needed */
        ErlDrvTermData port_id = st->port_id;
        Spec s;
        build_case(st, "atom", &s);
        driver_failure_atom(st->port, name);
        after_failure_rc = erl_drv_output_term(port_id, s.spec, s.len);
        return reply_text("failed", rbuf, rlen);
    }
    case 12:
        snprintf(text, sizeof text, "%d", after_failure_rc);
        return reply_text(text, rbuf, rlen);
    default:
        if (!run_case(st, (int)api, name, &rc))
            return reply_text("unknown_case", rbuf, rlen);
        snprintf(text, sizeof text, "%d", rc);
        return reply_text(text, rbuf, rlen);
    }
}

static void term_output(ErlDrvData data, char *buf_in, ErlDrvSizeT len)
{
    TermState *st = (TermState *)data;
    char name[64];
    int rc = 0;
    ErlDrvTermData reply[6];
    if (len >= sizeof name)
        return;
    memcpy(name, buf_in, len);
    name[len] = 0;
    if (!run_case(st, 2, name, &rc))
        return;
    reply[0] = ERL_DRV_ATOM;
    reply[1] = driver_mk_atom("term_drv_rc");
    reply[2] = ERL_DRV_INT;
    reply[3] = (ErlDrvTermData)(ErlDrvSInt)rc;
    reply[4] = ERL_DRV_TUPLE;
    reply[5] = 2;
    driver_send_term(st->port, driver_caller(st->port), reply, 6);
}

static ErlDrvEntry term_driver_entry = {
    .start = term_start,
    .stop = term_stop,
    .output = term_output,
    .driver_name = "term_drv",
    .control = term_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(term_drv)
{
    return &term_driver_entry;
}
