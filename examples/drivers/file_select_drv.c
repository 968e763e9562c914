/*
 * file_select_drv: driver_select on descriptors epoll refuses (EPERM): /dev/null, /dev/zero,
 * regular files. BEAM polls those with poll() instead, where they are always ready, and
 * delivers their events level-triggered like any other (OTP's own chkio_drv and ioq_exit_drv
 * rely on it).
 *
 * control (port_control/3), replies are text; RC is driver_select's return:
 *   1 "N PATH" -> open PATH for reading (non-blocking), select READ|USE: "RC". ready_input
 *                 reads up to 4 bytes and outputs "in:K" (K bytes read); at end of file, or
 *                 after the N-th call, it turns USE off ("in:eof" / "in:K done").
 *   2 "N PATH" -> open PATH for writing, select WRITE|USE: "RC". ready_output writes one
 *                 byte and outputs "out"; after the N-th call it turns USE off ("out done").
 *   3          -> "stops N": stop_select calls so far (each closes its descriptor).
 *   4          -> deselect READ of the descriptor of control 1 (no USE off): "RC"
 * stop turns USE off on what is still selected.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"
#include "reply.h"

typedef struct {
    ErlDrvPort port;
    int in_fd, out_fd;
    int in_left, out_left;
} FileSelect;

static int stops;

static ErlDrvData fs_start(ErlDrvPort port, char *command)
{
    FileSelect *s = driver_alloc(sizeof *s);
    (void)command;
    if (s == NULL)
        return ERL_DRV_ERROR_GENERAL;
    s->port = port;
    s->in_fd = s->out_fd = -1;
    s->in_left = s->out_left = 0;
    return (ErlDrvData)s;
}

static void release(FileSelect *s, int *fd, int mode)
{
    if (*fd >= 0) {
        driver_select(s->port, (ErlDrvEvent)(long)*fd, mode | ERL_DRV_USE, 0);
        *fd = -1;
    }
}

static void fs_stop(ErlDrvData data)
{
    FileSelect *s = (FileSelect *)data;
    release(s, &s->in_fd, ERL_DRV_READ);
    release(s, &s->out_fd, ERL_DRV_WRITE);
    driver_free(s);
}

static void fs_ready_input(ErlDrvData data, ErlDrvEvent event)
{
    FileSelect *s = (FileSelect *)data;
    char buf[4], text[32];
    ssize_t n = read((int)(long)event, buf, sizeof buf);
    if (n <= 0) {
        output_text(s->port, n == 0 ? "in:eof" : "in:error");
        release(s, &s->in_fd, ERL_DRV_READ);
        return;
    }
    if (--s->in_left > 0) {
        snprintf(text, sizeof text, "in:%d", (int)n);
        output_text(s->port, text);
        return;
    }
    snprintf(text, sizeof text, "in:%d done", (int)n);
    output_text(s->port, text);
    release(s, &s->in_fd, ERL_DRV_READ);
}

static void fs_ready_output(ErlDrvData data, ErlDrvEvent event)
{
    FileSelect *s = (FileSelect *)data;
    if (write((int)(long)event, "x", 1) != 1) {
        output_text(s->port, "out:error");
        release(s, &s->out_fd, ERL_DRV_WRITE);
        return;
    }
    if (--s->out_left > 0) {
        output_text(s->port, "out");
        return;
    }
    output_text(s->port, "out done");
    release(s, &s->out_fd, ERL_DRV_WRITE);
}

static void fs_stop_select(ErlDrvEvent event, void *reserved)
{
    (void)reserved;
    close((int)(long)event);
    stops++;
}

/* "N PATH" into its count and a NUL-terminated path; 0 when malformed. */
static int parse(char *buf, ErlDrvSizeT len, int *count, char *path, size_t size)
{
    char text[512];
    int used = 0;
    if (len >= sizeof text)
        return 0;
    memcpy(text, buf, len);
    text[len] = '\0';
    if (sscanf(text, "%d %n", count, &used) != 1 || used == 0 || *count < 1)
        return 0;
    if (strlen(text + used) >= size)
        return 0;
    strcpy(path, text + used);
    return 1;
}

static ErlDrvSSizeT fs_control(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    FileSelect *s = (FileSelect *)data;
    char path[480];
    int count, fd, rc;
    switch (command) {
    case 1:
    case 2:
        if (!parse(buf, len, &count, path, sizeof path))
            return reply(rbuf, rlen, "bad request");
        fd = open(path, (command == 1 ? O_RDONLY : O_WRONLY) | O_NONBLOCK);
        if (fd < 0)
            return reply(rbuf, rlen, "open failed");
        if (command == 1) {
            s->in_fd = fd;
            s->in_left = count;
        } else {
            s->out_fd = fd;
            s->out_left = count;
        }
        rc = driver_select(s->port, (ErlDrvEvent)(long)fd,
                           (command == 1 ? ERL_DRV_READ : ERL_DRV_WRITE) | ERL_DRV_USE, 1);
        return replyf(rbuf, rlen, "%d", rc);
    case 3:
        return replyf(rbuf, rlen, "stops %d", stops);
    case 4:
        rc = s->in_fd < 0 ? -2
                          : driver_select(s->port, (ErlDrvEvent)(long)s->in_fd, ERL_DRV_READ, 0);
        return replyf(rbuf, rlen, "%d", rc);
    default:
        return -1;
    }
}

static ErlDrvEntry file_select_entry = {
    NULL,            /* init */
    fs_start,
    fs_stop,
    NULL,            /* output */
    fs_ready_input,
    fs_ready_output,
    "file_select_drv",
    NULL,            /* finish */
    NULL,            /* handle */
    fs_control,
    NULL,            /* timeout */
    NULL,            /* outputv */
    NULL,            /* ready_async */
    NULL,            /* flush */
    NULL,            /* call */
    NULL,            /* event */
    ERL_DRV_EXTENDED_MARKER,
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,               /* flags */
    NULL,            /* handle2 */
    NULL,            /* process_exit */
    fs_stop_select,
    NULL,            /* emergency_close */
};

DRIVER_INIT(file_select_drv)
{
    return &file_select_entry;
}
