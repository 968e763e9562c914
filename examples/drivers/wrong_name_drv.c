/*
 * wrong_name_drv: the file is wrong_name_drv.so but the entry names the driver "other",
 * so loading it as wrong_name_drv fails with bad_driver_name.
 */
#include "erl_driver.h"

static ErlDrvEntry wrong_name_drv_entry = {
    NULL,              /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "other",           /* driver_name */
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

DRIVER_INIT(wrong_name_drv)
{
    return &wrong_name_drv_entry;
}
