/* busy_drv with ERL_DRV_FLAG_NO_BUSY_MSGQ (see busy_drv.c). */
#define BUSY_DRV_NAME busy_nomsgq_drv
#define BUSY_DRV_FLAGS (ERL_DRV_FLAG_USE_PORT_LOCKING | ERL_DRV_FLAG_NO_BUSY_MSGQ)
#include "busy_drv.c"
