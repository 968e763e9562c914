/*
 * null_init_drv: driver_init returns NULL instead of an entry, so loading
 * fails with driver_init_failed.
 */
#include <stddef.h>

#include "erl_driver.h"

DRIVER_INIT(null_init_drv)
{
    return NULL;
}
