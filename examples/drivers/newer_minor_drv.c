/*
 * newer_minor_drv: declares minor version 99 (newer than the runtime's), so loading fails
 * with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry newer_minor_drv_entry = {
    NULL,              /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "newer_minor_drv", /* driver_name */
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
    99,                /* minor_version */
    0,                 /* driver_flags */
    NULL,              /* handle2 */
    NULL,              /* process_exit */
    NULL,              /* stop_select */
    NULL               /* emergency_close */
};

DRIVER_INIT(newer_minor_drv)
{
    return &newer_minor_drv_entry;
}
