/*
 * contract_drv: the edges of the control and call callbacks' reply contract, and
 * erl_errno_id's table.
 *
 * Open with erlang:open_port({spawn_driver, "contract_drv"}, []) for list replies, or
 * "contract_drv binary" for PORT_CONTROL_FLAG_BINARY from start.
 *
 * control (port_control/3):
 *   0  -> the rlen offered, as decimal text, in the runtime's buffer
 *   1  -> *rbuf = NULL, returns 0
 *   2  -> *rbuf = NULL, returns 5
 *   3  -> (binary mode) *rbuf = a driver binary "0123456789", returns 3
 *   4  -> (binary mode) *rbuf = a driver binary of 100 'a's, returns 0
 *   5  -> returns -1, *rbuf untouched
 *   6  -> *rbuf = a static buffer, returns -1 (whoever frees it crashes)
 *   7  -> (list mode) *rbuf = a driver_alloc'ed buffer of 100 'b's, returns 100
 *   8  -> "hello" in the runtime's buffer, returns 5
 *   9  -> returns 0, *rbuf untouched
 *   10 -> (binary mode) *rbuf = a driver binary, returns -1
 *   20 -> the input "A B": erl_errno_id(A) ... erl_errno_id(B), separated by spaces
 *
 * call (port_call/3), the input is the argument's external term format:
 *   0  -> the rlen offered, as an ETF integer
 *   1  -> *rbuf = the input buffer with DRIVER_CALL_KEEP_BUFFER: the argument back
 *   2  -> the argument back in a driver_alloc'ed buffer (the runtime frees it)
 *   3  -> version byte then 255: not a term
 *   4  -> returns -1
 *   5  -> returns 0
 *   6  -> the atom ok followed by three bytes of garbage (all counted in the length)
 *   7  -> a small integer without the version byte
 *   8  -> *rbuf = a static buffer holding no term, no flags (whoever frees it crashes)
 *   9  -> *rbuf = a static buffer holding the atom ok, DRIVER_CALL_KEEP_BUFFER
 *   10 -> the small integer 5 in the runtime's buffer, length 200 (within rlen)
 *   11 -> *rbuf = a static buffer, returns -1
 *   12 -> the small integer 5 in the runtime's buffer, length rlen + 1000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
} ContractState;

static char static_reply[] = "static";
static char static_term_ok[] = {(char)131, 100, 0, 2, 'o', 'k'};

static ErlDrvData contract_start(ErlDrvPort port, char *command)
{
    ContractState *st = driver_alloc(sizeof(ContractState));
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    if (strstr(command, "binary") != NULL)
        set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    return (ErlDrvData)st;
}

static void contract_stop(ErlDrvData data)
{
    driver_free(data);
}

static ErlDrvBinary *filled_binary(const char *text, ErlDrvSizeT len, char fill)
{
    ErlDrvBinary *bin = driver_alloc_binary(len);
    if (bin == NULL)
        return NULL;
    if (text != NULL)
        memcpy(bin->orig_bytes, text, len);
    else
        memset(bin->orig_bytes, fill, len);
    return bin;
}

/* The errno names from A to B ("A B" in buf), space separated, in a driver_alloc'ed reply. */
static ErlDrvSSizeT errno_names(char *buf, ErlDrvSizeT len, char **rbuf)
{
    char input[32];
    int from, to, e;
    size_t used = 0, cap = 4096;
    char *out;
    if (len >= sizeof input)
        return -1;
    memcpy(input, buf, len);
    input[len] = '\0';
    if (sscanf(input, "%d %d", &from, &to) != 2 || from > to || to - from > 100)
        return -1;
    out = driver_alloc(cap);
    if (out == NULL)
        return -1;
    for (e = from; e <= to; e++) {
        int n = snprintf(out + used, cap - used, "%s%s", e == from ? "" : " ", erl_errno_id(e));
        if (n < 0 || (size_t)n >= cap - used) {
            driver_free(out);
            return -1;
        }
        used += (size_t)n;
    }
    *rbuf = out;
    return (ErlDrvSSizeT)used;
}

static ErlDrvSSizeT contract_control(ErlDrvData data, unsigned int command, char *buf,
                                     ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvBinary *bin;
    char *big;
    (void)data;
    switch (command) {
    case 0:
        return snprintf(*rbuf, rlen, "%lu", (unsigned long)rlen);
    case 1:
        *rbuf = NULL;
        return 0;
    case 2:
        *rbuf = NULL;
        return 5;
    case 3:
        if ((bin = filled_binary("0123456789", 10, 0)) == NULL)
            return -1;
        *rbuf = (char *)bin;
        return 3;
    case 4:
        if ((bin = filled_binary(NULL, 100, 'a')) == NULL)
            return -1;
        *rbuf = (char *)bin;
        return 0;
    case 5:
        return -1;
    case 6:
        *rbuf = static_reply;
        return -1;
    case 7:
        if ((big = driver_alloc(100)) == NULL)
            return -1;
        memset(big, 'b', 100);
        *rbuf = big;
        return 100;
    case 8:
        memcpy(*rbuf, "hello", 5);
        return 5;
    case 9:
        return 0;
    case 10:
        if ((bin = filled_binary("lost", 4, 0)) == NULL)
            return -1;
        *rbuf = (char *)bin;
        return -1;
    case 20:
        return errno_names(buf, len, rbuf);
    default:
        return -1;
    }
}

static ErlDrvSSizeT contract_call(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                                  unsigned int *flags)
{
    char *out;
    (void)data;
    switch (command) {
    case 0:
        out = *rbuf;
        out[0] = (char)131;
        out[1] = 98; /* INTEGER_EXT */
        out[2] = (char)((rlen >> 24) & 0xff);
        out[3] = (char)((rlen >> 16) & 0xff);
        out[4] = (char)((rlen >> 8) & 0xff);
        out[5] = (char)(rlen & 0xff);
        return 6;
    case 1:
        *rbuf = buf;
        *flags |= DRIVER_CALL_KEEP_BUFFER;
        return (ErlDrvSSizeT)len;
    case 2:
        if ((out = driver_alloc(len)) == NULL)
            return -1;
        memcpy(out, buf, len);
        *rbuf = out;
        return (ErlDrvSSizeT)len;
    case 3:
        out = *rbuf;
        out[0] = (char)131;
        out[1] = (char)255;
        return 2;
    case 4:
        return -1;
    case 5:
        return 0;
    case 6:
        out = *rbuf;
        memcpy(out, static_term_ok, sizeof static_term_ok);
        memcpy(out + sizeof static_term_ok, "xyz", 3);
        return (ErlDrvSSizeT)sizeof static_term_ok + 3;
    case 7:
        out = *rbuf;
        out[0] = 97; /* SMALL_INTEGER_EXT */
        out[1] = 5;
        return 2;
    case 8:
        *rbuf = static_reply;
        return 6;
    case 9:
        *rbuf = static_term_ok;
        *flags |= DRIVER_CALL_KEEP_BUFFER;
        return (ErlDrvSSizeT)sizeof static_term_ok;
    case 10:
    case 12:
        out = *rbuf;
        out[0] = (char)131;
        out[1] = 97;
        out[2] = 5;
        return command == 10 ? 200 : (ErlDrvSSizeT)rlen + 1000;
    case 11:
        *rbuf = static_reply;
        return -1;
    default:
        return -1;
    }
}

static ErlDrvEntry contract_driver_entry = {
    .start = contract_start,
    .stop = contract_stop,
    .driver_name = "contract_drv",
    .control = contract_control,
    .call = contract_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(contract_drv)
{
    return &contract_driver_entry;
}
