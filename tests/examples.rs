use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use nix::sys::signal::Signal;

use crate::harness::Sandbox;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_example_scripts_seed_once_serve_and_come_back_restored() {
    assert!(
        std::process::Command::new("busybox")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success()),
        "the example scripts need busybox on PATH (apt-get install busybox-static)"
    );
    let sandbox = Sandbox::new("examples");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("init.d-examples");
    let port = free_port().to_string();
    let www = sandbox.path("www");
    let pidfile = sandbox.path("httpd.pid");
    let env = [
        ("SEED_DATA_DIR", www.to_str().unwrap()),
        ("SEED_RECORDS", "20"),
        ("HTTPD_ROOT", www.to_str().unwrap()),
        ("HTTPD_PIDFILE", pidfile.to_str().unwrap()),
        ("HTTPD_PORT", port.as_str()),
    ];
    for script in ["10-seed-data.sh", "20-httpd.sh"] {
        std::fs::copy(examples.join(script), sandbox.init_d.join(script)).unwrap();
    }
    let args = [];
    let port: u16 = port.parse().unwrap();

    let mut first = sandbox.start_with_env(&args, &env);
    first.wait_for_line("[10-seed-data.sh] seeded 20 records");
    first.wait_for_line("running: 2 script(s) started");
    assert!(http_get(port, "/index.html").contains("seeded at boot 1"));
    assert!(http_get(port, "/record-20.txt").contains("record 20 of boot 1"));
    sandbox.quiesce_ok();
    first.wait_for_line("[20-httpd.sh] httpd stopped");
    first.signal(Signal::SIGKILL);
    first.wait_exit();

    let mut second = sandbox.start_with_env(&args, &env);
    second.wait_for_line("restored=1): skipping");
    second.wait_for_line("running: 2 script(s) started");
    assert!(http_get(port, "/index.html").contains("seeded at boot 1"));
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait_exit(), 0);
    assert!(second.log().contains("[20-httpd.sh] httpd stopped"));
}
