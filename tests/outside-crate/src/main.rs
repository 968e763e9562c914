//! Loads `echo_drv` from the folder given as the first argument, echoes a message through it,
//! and prints what came back.

fn main() {
    let dir = std::env::args().nth(1).expect("usage: outside-crate DRIVER_DIR");
    let rt = ddll::Runtime::new().expect("the C API shim installs");
    let me = rt.spawn(Some("main"));
    let reply = rt.try_load(me.pid(), &dir, "echo_drv", Default::default());
    assert!(reply.is_ok(), "echo_drv loads: {reply:?}");
    let options = ddll::PortOptions::new().binary(true);
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("port opens");
    rt.port_command_bytes(me.pid(), &port, b"hello from outside")
        .expect("command accepted");
    let message = rt
        .receive(me.pid(), Some(std::time::Duration::from_secs(5)))
        .expect("the driver answers");
    println!("{message}");
}
