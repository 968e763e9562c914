/*
 * echo_drv: a small demo port driver exercising the common erl_driver calls.
 *
 * Open it with erlang:open_port({spawn, "echo_drv [ARGS]"}, Opts)
 * (or {spawn_driver, ...}). If ARGS contains the word "binary_control",
 * port_control replies are binaries from the start (PORT_CONTROL_FLAG_BINARY).
 *
 * output (port_command/2, Port ! {Pid, {command, Data}}):
 *   "fail_atom"   -> driver_failure_atom(port, "boom")
 *   "fail_posix"  -> driver_failure_posix(port, EIO)
 *   "fail_eof"    -> driver_failure_eof(port)
 *   "fail"        -> driver_failure(port, 7)
 *   "fail_zero"   -> driver_failure(port, 0)
 *   "exit"        -> driver_exit(port, 0)
 *   "exit_posix"  -> driver_exit(port, EIO)
 *   "cmd"         -> driver_output of the command string given to open_port
 *   "hdr:REST"    -> driver_output2(port, "hdr", 3, REST, len)
 *   "bin:REST"    -> driver_output_binary(port, "b", 1, <driver binary REST>)
 *   "twice:REST"  -> driver_output(REST) two times
 *   "then_timer:REST" -> driver_output(REST), then driver_set_timer(port, 0):
 *                    the timeout outputs "timeout" (output from the timer
 *                    thread right after the command's)
 *   "silent"      -> no output at all
 *   anything else -> driver_output of the same bytes
 *
 * control (port_control/3), reply is a list or, with the binary flag, a binary:
 *   1 -> the bytes back
 *   2 -> the bytes upper-cased (ASCII)
 *   3 -> the byte count as decimal text
 *   4 -> set PORT_CONTROL_FLAG_BINARY, reply empty
 *   5 -> clear the control flags (list replies), reply empty
 *   other -> -1 (badarg)
 *
 * call (erlang:port_call/3); the input is the external term format (ETF) of
 * the Erlang argument, the reply is ETF built by hand here:
 *   1 -> {ok, <<the ETF bytes received>>}
 *   2 -> the received term itself (the bytes are returned unchanged)
 *   3 -> {calls, N}: N = number of port_call invocations on this port so far
 *   other -> -1 (badarg)
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
    char *command;        /* copy of the open_port command string */
    unsigned long calls;  /* number of port_call invocations */
    int control_binary;   /* mirrors PORT_CONTROL_FLAG_BINARY: the API has no getter */
} EchoState;

static ErlDrvData echo_start(ErlDrvPort port, char *command)
{
    EchoState *st = driver_alloc(sizeof(EchoState));
    size_t len;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    len = strlen(command);
    st->command = driver_alloc(len + 1);
    if (st->command == NULL) {
        driver_free(st);
        return ERL_DRV_ERROR_GENERAL;
    }
    memcpy(st->command, command, len + 1);
    st->port = port;
    st->calls = 0;
    st->control_binary = strstr(command, "binary_control") != NULL;
    if (st->control_binary)
        set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    return (ErlDrvData)st;
}

static void echo_stop(ErlDrvData data)
{
    EchoState *st = (EchoState *)data;
    driver_free(st->command);
    driver_free(st);
}

static void echo_timeout(ErlDrvData data)
{
    EchoState *st = (EchoState *)data;
    driver_output(st->port, "timeout", 7);
}

/* True when buf[0..len) is exactly the NUL-free text `word`. */
static int is_word(const char *buf, ErlDrvSizeT len, const char *word)
{
    return len == strlen(word) && memcmp(buf, word, len) == 0;
}

/* True when buf[0..len) starts with `prefix`. */
static int has_prefix(const char *buf, ErlDrvSizeT len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(buf, prefix, plen) == 0;
}

static void echo_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    EchoState *st = (EchoState *)data;
    ErlDrvPort port = st->port;

    if (is_word(buf, len, "fail_atom")) {
        driver_failure_atom(port, "boom");
    } else if (is_word(buf, len, "fail_posix")) {
        driver_failure_posix(port, EIO);
    } else if (is_word(buf, len, "fail_eof")) {
        driver_failure_eof(port);
    } else if (is_word(buf, len, "fail")) {
        driver_failure(port, 7);
    } else if (is_word(buf, len, "fail_zero")) {
        driver_failure(port, 0);
    } else if (is_word(buf, len, "exit")) {
        driver_exit(port, 0);
    } else if (is_word(buf, len, "exit_posix")) {
        driver_exit(port, EIO);
    } else if (is_word(buf, len, "cmd")) {
        driver_output(port, st->command, strlen(st->command));
    } else if (is_word(buf, len, "silent")) {
        /* deliberately nothing */
    } else if (has_prefix(buf, len, "hdr:")) {
        driver_output2(port, "hdr", 3, buf + 4, len - 4);
    } else if (has_prefix(buf, len, "bin:")) {
        ErlDrvBinary *bin = driver_alloc_binary(len - 4);
        if (bin == NULL) {
            driver_failure_posix(port, ENOMEM);
            return;
        }
        memcpy(bin->orig_bytes, buf + 4, len - 4);
        driver_output_binary(port, "b", 1, bin, 0, len - 4);
        driver_free_binary(bin);
    } else if (has_prefix(buf, len, "then_timer:")) {
        driver_output(port, buf + 11, len - 11);
        driver_set_timer(port, 0);
    } else if (has_prefix(buf, len, "twice:")) {
        driver_output(port, buf + 6, len - 6);
        driver_output(port, buf + 6, len - 6);
    } else {
        driver_output(port, buf, len);
    }
}

/*
 * Hands `len` bytes from `src` back to the runtime: a driver binary when the
 * port's control flags say binary, else a char buffer (the runtime's own
 * `rbuf` when it is large enough).
 */
static ErlDrvSSizeT control_reply(const char *src, ErlDrvSizeT len,
                                  int upper, char **rbuf, ErlDrvSizeT rlen,
                                  int binary)
{
    char *dst;
    ErlDrvSizeT i;
    if (binary) {
        ErlDrvBinary *bin = driver_alloc_binary(len);
        if (bin == NULL)
            return -1;
        dst = bin->orig_bytes;
        *rbuf = (char *)bin;
    } else {
        if (len > rlen) {
            dst = driver_alloc(len);
            if (dst == NULL)
                return -1;
            *rbuf = dst;
        } else {
            dst = *rbuf;
        }
    }
    for (i = 0; i < len; i++)
        dst[i] = upper ? (char)toupper((unsigned char)src[i]) : src[i];
    return (ErlDrvSSizeT)len;
}

static ErlDrvSSizeT echo_control(ErlDrvData data, unsigned int command, char *buf,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    EchoState *st = (EchoState *)data;
    int binary = st->control_binary;
    char text[32];

    switch (command) {
    case 1:
        return control_reply(buf, len, 0, rbuf, rlen, binary);
    case 2:
        return control_reply(buf, len, 1, rbuf, rlen, binary);
    case 3:
        snprintf(text, sizeof text, "%lu", (unsigned long)len);
        return control_reply(text, strlen(text), 0, rbuf, rlen, binary);
    case 4:
        set_port_control_flags(st->port, PORT_CONTROL_FLAG_BINARY);
        st->control_binary = 1;
        return control_reply("", 0, 0, rbuf, rlen, 1);
    case 5:
        set_port_control_flags(st->port, 0);
        st->control_binary = 0;
        return control_reply("", 0, 0, rbuf, rlen, 0);
    default:
        return -1;
    }
}

/* ETF tags used by echo_call. */
#define ETF_VERSION 131
#define ETF_SMALL_INTEGER 97
#define ETF_INTEGER 98
#define ETF_SMALL_TUPLE 104
#define ETF_BINARY 109
#define ETF_SMALL_ATOM_UTF8 119

/* Appends a small UTF-8 atom; returns the new write position. */
static char *put_atom(char *p, const char *name)
{
    size_t n = strlen(name);
    *p++ = (char)ETF_SMALL_ATOM_UTF8;
    *p++ = (char)n;
    memcpy(p, name, n);
    return p + n;
}

static char *put_u32(char *p, unsigned long v)
{
    *p++ = (char)((v >> 24) & 0xff);
    *p++ = (char)((v >> 16) & 0xff);
    *p++ = (char)((v >> 8) & 0xff);
    *p++ = (char)(v & 0xff);
    return p;
}

/* Gives a reply buffer of `need` bytes: the runtime's when large enough. */
static char *reply_buffer(char **rbuf, ErlDrvSizeT rlen, ErlDrvSizeT need)
{
    if (need <= rlen)
        return *rbuf;
    *rbuf = driver_alloc(need);
    return *rbuf;
}

static ErlDrvSSizeT echo_call(ErlDrvData data, unsigned int command, char *buf,
                              ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                              unsigned int *flags)
{
    EchoState *st = (EchoState *)data;
    char *out, *p;
    ErlDrvSizeT need;
    (void)flags;
    st->calls++;

    switch (command) {
    case 1: /* {ok, <<buf>>} */
        if (len > 0xffffffffUL)
            return -1;
        need = 1 + 2 + (2 + 2) + 5 + len;
        out = reply_buffer(rbuf, rlen, need);
        if (out == NULL)
            return -1;
        p = out;
        *p++ = (char)ETF_VERSION;
        *p++ = (char)ETF_SMALL_TUPLE;
        *p++ = 2;
        p = put_atom(p, "ok");
        *p++ = (char)ETF_BINARY;
        p = put_u32(p, (unsigned long)len);
        memcpy(p, buf, len);
        p += len;
        return (ErlDrvSSizeT)(p - out);
    case 2: /* the argument's own encoding */
        out = reply_buffer(rbuf, rlen, len);
        if (out == NULL)
            return -1;
        memcpy(out, buf, len);
        return (ErlDrvSSizeT)len;
    case 3: /* {calls, N} */
        need = 1 + 2 + (2 + 5) + 5;
        out = reply_buffer(rbuf, rlen, need);
        if (out == NULL)
            return -1;
        p = out;
        *p++ = (char)ETF_VERSION;
        *p++ = (char)ETF_SMALL_TUPLE;
        *p++ = 2;
        p = put_atom(p, "calls");
        if (st->calls < 256) {
            *p++ = (char)ETF_SMALL_INTEGER;
            *p++ = (char)st->calls;
        } else {
            *p++ = (char)ETF_INTEGER;
            p = put_u32(p, st->calls & 0x7fffffffUL);
        }
        return (ErlDrvSSizeT)(p - out);
    default:
        return -1;
    }
}

static ErlDrvEntry echo_driver_entry = {
    .start = echo_start,
    .stop = echo_stop,
    .output = echo_output,
    .timeout = echo_timeout,
    .driver_name = "echo_drv",
    .control = echo_control,
    .call = echo_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(echo_drv)
{
    return &echo_driver_entry;
}
