/*
 * queue_noflush_drv: queue_drv without a flush callback, to show what closing
 * a port with queued data does when the driver cannot be asked to flush.
 */
#define QUEUE_DRV_NAME queue_noflush_drv
#define QUEUE_DRV_FLUSH 0
#include "queue_drv.c"
