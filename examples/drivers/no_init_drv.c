/*
 * no_init_drv: a valid shared library without the driver_init symbol, so
 * loading fails with no_driver_init.
 */
#include "erl_driver.h"

/* Some exported symbol so the library is not empty; not an init function. */
int no_init_drv_marker(void);

int no_init_drv_marker(void)
{
    return 42;
}
