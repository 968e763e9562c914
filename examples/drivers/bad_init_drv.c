/*
 * bad_init_drv: the entry's init callback returns -1, so loading fails with driver_init_failed.
 */
#include "erl_driver.h"

static int bad_init_init(void)
{
    return -1;
}

static ErlDrvEntry bad_init_drv_entry = {
    bad_init_init, /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "bad_init_drv",    /* driver_name */
    NULL,              /* finish */
    NULL,              /* handle */
    NULL,              /* control */
    NULL,              /* timeout */
    NULL,              /* outputv */
    NULL,              /* ready_async */
    NULL,              /* flush */
    NULL,              /* call */
    NULL,              /* unused_event_callback */
    ERL_DRV_EXTENDED_MARKER,
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,                 /* driver_flags */
    NULL,              /* handle2 */
    NULL,              /* process_exit */
    NULL,              /* stop_select */
    NULL               /* emergency_close */
};

DRIVER_INIT(bad_init_drv)
{
    return &bad_init_drv_entry;
}
