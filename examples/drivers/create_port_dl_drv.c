/*
 * create_port_dl_drv: create_port_drv with driver-level locking (no
 * ERL_DRV_FLAG_USE_PORT_LOCKING); the same commands. Under BEAM 25 its
 * driver_create_port never returns (the new port takes the driver lock its
 * creator holds), so only ddll's tests use it.
 */
#define CREATE_PORT_DRIVER_LOCKING 1
#include "create_port_drv.c"
