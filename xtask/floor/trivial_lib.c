/* A library with nothing but a driver_init symbol: the floor's subject. */
void *driver_init(void);
void *driver_init(void) { return 0; }
