//! The real `website` executable: configuration from the environment, startup refusal, SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{JWT_SECRET, mongodb_uri};

fn website() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_website"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        // A free port: never the default one another website on this machine may hold.
        .env("WEBSITE_METRICS_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn the_binary_refuses_to_start_without_a_strong_jwt_secret() {
    for (secret, expected, why) in [
        (None, "JWT_SECRET is not set", "missing"),
        (Some("too short"), "JWT_SECRET is too short", "short"),
    ] {
        let mut command = website();
        if let Some(secret) = secret {
            command.env("JWT_SECRET", secret);
        }

        let output = command.output().unwrap();

        assert!(!output.status.success(), "{why}: exited successfully");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{why}: {stderr}");
    }
}

/// Waits until `port` accepts connections or the deadline passes.
fn wait_for_port(port: u16, deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_binary_serves_passes_its_healthcheck_and_stops_cleanly_on_sigterm() {
    // A per-test database, not db/schema.json's: startup warns about that, and still serves.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let database = format!("webchat_test_{}", uuid::Uuid::new_v4().simple());
    let mut child = website()
        .env("JWT_SECRET", JWT_SECRET)
        .env("WEBSITE_ADDR", &addr)
        .env("MONGODB_URI", mongodb_uri())
        .env("MONGODB_DB", &database)
        .spawn()
        .unwrap();
    let serving = wait_for_port(port, Duration::from_secs(30));

    let probe = website()
        .arg("healthcheck")
        .env("WEBSITE_ADDR", &addr)
        .status()
        .unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    assert!(serving, "the server never listened on {addr}");
    assert!(
        probe.success(),
        "`website healthcheck` failed against a running server"
    );
    assert!(term.success());
    let status = status.expect("the server did not exit within 20 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let after = website()
        .arg("healthcheck")
        .env("WEBSITE_ADDR", &addr)
        .status()
        .unwrap();
    assert!(
        !after.success(),
        "the healthcheck fails once the server is gone"
    );
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let warning = log
        .lines()
        .find(|line| line.contains("WARN") && line.contains("MONGODB_DB"))
        .unwrap_or_else(|| panic!("no warning about the database name in:\n{log}"));
    assert!(
        warning.contains(&database) && warning.contains(r#""webchat""#),
        "the warning names both databases: {warning}"
    );
    let client = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let _ = client.database(&database).drop().await;
}
