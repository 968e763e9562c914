/* ERL_DRIVER_TYPES_ONLY: types and term tags are available, no function declarations. */
#define ERL_DRIVER_TYPES_ONLY
#include <erl_driver.h>

ErlDrvTermData types_only_spec[] = { ERL_DRV_NIL, ERL_DRV_LIST, 1 };
ErlDrvEntry types_only_entry;
ErlDrvSizeT types_only_size = sizeof(ErlIOVec) + sizeof(ErlDrvBinary) + sizeof(SysIOVec);
int types_only_flags = ERL_DRV_FLAG_USE_PORT_LOCKING | PORT_CONTROL_FLAG_BINARY;
