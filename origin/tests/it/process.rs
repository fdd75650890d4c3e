//! The real binary: configuration errors name the variable; SIGTERM drains and exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_origin");

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    for (variable, value) in [
        ("PORT", "eighty"),
        ("CASSANDRA_CONSISTENCY", "MAYBE"),
        ("TICK_MS", "0"),
        ("REGION", "Europe West"),
    ] {
        let output = Command::new(BINARY)
            .env(variable, value)
            .env("RUST_LOG", "off")
            .output()
            .expect("run origin");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let port = free_port();
    let mut child = Command::new(BINARY)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REGION", "eu")
        .env(
            "CASSANDRA_KEYSPACE",
            format!("test_proc_{}", std::process::id()),
        )
        .env(
            "CASSANDRA_HOSTS",
            std::env::var("CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1:9042".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn origin");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ =
                stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        panic!("origin did not become ready on port {port}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("origin did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
