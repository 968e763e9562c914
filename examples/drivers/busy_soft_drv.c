/* busy_drv with ERL_DRV_FLAG_SOFT_BUSY (see busy_drv.c). */
#define BUSY_DRV_NAME busy_soft_drv
#define BUSY_DRV_FLAGS (ERL_DRV_FLAG_USE_PORT_LOCKING | ERL_DRV_FLAG_SOFT_BUSY)
#include "busy_drv.c"
