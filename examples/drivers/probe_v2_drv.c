/*
 * probe_v2_drv: probe_drv.c as version 2 (the driver is still named "probe_drv";
 * a scenario copies this file over probe_drv.so before a reload).
 */
#define PROBE_VERSION 2
#include "probe_drv.c"
