/*
 * bad_marker_drv: extended_marker is not ERL_DRV_EXTENDED_MARKER (a pre-extended driver),
 * so loading fails with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry bad_marker_drv_entry = {
    NULL,              /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "bad_marker_drv",  /* driver_name */
    NULL,              /* finish */
    NULL,              /* handle */
    NULL,              /* control */
    NULL,              /* timeout */
    NULL,              /* outputv */
    NULL,              /* ready_async */
    NULL,              /* flush */
    NULL,              /* call */
    NULL,              /* unused_event_callback */
    0,                 /* extended_marker: not the extended one */
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,                 /* driver_flags */
    NULL,              /* handle2 */
    NULL,              /* process_exit */
    NULL,              /* stop_select */
    NULL               /* emergency_close */
};

DRIVER_INIT(bad_marker_drv)
{
    return &bad_marker_drv_entry;
}
