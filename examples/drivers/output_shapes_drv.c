/*
 * output_shapes_drv: the message shapes of driver_output* and driver_outputv
 * at their edges, one command each (the command is the whole port_command):
 *
 *   "null"        -> driver_output(port, NULL, 0): no body at all
 *   "null_hdr"    -> driver_output2(port, "hd", 2, NULL, 0): the header alone
 *   "empty_hdr"   -> driver_output2(port, "hd", 2, "", 0): header + empty body
 *   "gaps"        -> driver_outputv of ["ab", "", "cd", ""], skip 0
 *   "gaps_skip"   -> the same vector, skip 2 ("ab" goes, the "" after it stays)
 *   "gaps_lead"   -> driver_outputv of ["", "", "cd", ""], skip 0 (only the
 *                    first empty entry is stripped)
 *   "gaps_hdr"    -> "gaps" with the header "hd"
 *   "all_empty"   -> driver_outputv of ["", ""] with the header "hd": no byte
 *                    left, so only the header is sent
 *   "shared"      -> driver_outputv of three slices of one driver binary
 *                    ("abc", "def", "gh"), skip 1, binv set for each entry
 *
 * In a binary-mode port each entry of a vector arrives as its own binary,
 * the last one as the list's tail.
 */
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
} ShapesState;

static ErlDrvData shapes_start(ErlDrvPort port, char *command)
{
    ShapesState *st = driver_alloc(sizeof(ShapesState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    return (ErlDrvData)st;
}

static void shapes_stop(ErlDrvData data)
{
    driver_free(data);
}

static int is_word(const char *buf, ErlDrvSizeT len, const char *word)
{
    return len == strlen(word) && memcmp(buf, word, len) == 0;
}

/* Sends the entries `texts[0..n)` (NUL-terminated) as one vector. */
static void send_vector(ErlDrvPort port, char *hbuf, ErlDrvSizeT hlen,
                        const char *const *texts, int n, ErlDrvSizeT skip)
{
    SysIOVec iov[4];
    ErlDrvBinary *binv[4] = {NULL, NULL, NULL, NULL};
    ErlIOVec ev;
    ErlDrvSizeT size = 0;
    int i;
    for (i = 0; i < n; i++) {
        iov[i].iov_base = (char *)texts[i];
        iov[i].iov_len = strlen(texts[i]);
        size += iov[i].iov_len;
    }
    ev.vsize = n;
    ev.size = size;
    ev.iov = iov;
    ev.binv = binv;
    driver_outputv(port, hbuf, hlen, &ev, skip);
}

static void send_shared(ErlDrvPort port)
{
    ErlDrvBinary *bin = driver_alloc_binary(8);
    SysIOVec iov[3];
    ErlDrvBinary *binv[3];
    ErlIOVec ev;
    if (bin == NULL) {
        driver_failure_atom(port, "enomem");
        return;
    }
    memcpy(bin->orig_bytes, "abcdefgh", 8);
    iov[0].iov_base = bin->orig_bytes;
    iov[0].iov_len = 3;
    iov[1].iov_base = bin->orig_bytes + 3;
    iov[1].iov_len = 3;
    iov[2].iov_base = bin->orig_bytes + 6;
    iov[2].iov_len = 2;
    binv[0] = binv[1] = binv[2] = bin;
    ev.vsize = 3;
    ev.size = 8;
    ev.iov = iov;
    ev.binv = binv;
    driver_outputv(port, NULL, 0, &ev, 1);
    driver_free_binary(bin);
}

static void shapes_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    static const char *const gaps[] = {"ab", "", "cd", ""};
    static const char *const lead[] = {"", "", "cd", ""};
    static const char *const empty[] = {"", ""};
    ErlDrvPort port = ((ShapesState *)data)->port;
    char hd[] = "hd";
    char nothing[] = "";

    if (is_word(buf, len, "null"))
        driver_output(port, NULL, 0);
    else if (is_word(buf, len, "null_hdr"))
        driver_output2(port, hd, 2, NULL, 0);
    else if (is_word(buf, len, "empty_hdr"))
        driver_output2(port, hd, 2, nothing, 0);
    else if (is_word(buf, len, "gaps"))
        send_vector(port, NULL, 0, gaps, 4, 0);
    else if (is_word(buf, len, "gaps_skip"))
        send_vector(port, NULL, 0, gaps, 4, 2);
    else if (is_word(buf, len, "gaps_lead"))
        send_vector(port, NULL, 0, lead, 4, 0);
    else if (is_word(buf, len, "gaps_hdr"))
        send_vector(port, hd, 2, gaps, 4, 0);
    else if (is_word(buf, len, "all_empty"))
        send_vector(port, hd, 2, empty, 2, 0);
    else if (is_word(buf, len, "shared"))
        send_shared(port);
    else
        driver_failure_atom(port, "unknown_command");
}

static ErlDrvEntry shapes_driver_entry = {
    .start = shapes_start,
    .stop = shapes_stop,
    .output = shapes_output,
    .driver_name = "output_shapes_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(output_shapes_drv)
{
    return &shapes_driver_entry;
}
