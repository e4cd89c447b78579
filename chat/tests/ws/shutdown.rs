//! Stopping: graceful shutdown in-process, and the real binary's start-up (its threads'
//! scheduling), healthcheck and SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{OTHER_ROOM_ID, ROOM_ID, SECRET, TestServer};

#[tokio::test]
async fn shutdown_closes_every_client_with_1001() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut eve, _) = server.join("eve@x.org", OTHER_ROOM_ID).await;

    let stopping = tokio::spawn(server.shut_down());

    assert_eq!(ann.closed_with().await, 1001);
    assert_eq!(eve.closed_with().await, 1001);
    stopping.await.unwrap();
}

#[tokio::test]
async fn after_shutdown_no_new_connection_is_accepted() {
    let server = TestServer::spawn().await;
    let addr = server.addr;

    server.shut_down().await;

    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

const BINARY: &str = env!("CARGO_BIN_EXE_chat");

fn chat_command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("RUST_LOG", "info")
        // A free port: never the default one another chat on this machine may hold.
        .env("CHAT_METRICS_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run_to_end(env: &[(&str, &str)]) -> Output {
    let child = chat_command(env).spawn().unwrap();
    wait_with_deadline(child, Duration::from_secs(10))
}

fn wait_with_deadline(mut child: Child, deadline: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("the chat binary did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn healthcheck(addr: &str) -> ExitStatus {
    Command::new(BINARY)
        .arg("healthcheck")
        .env_clear()
        .env("CHAT_ADDR", addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

#[test]
fn the_binary_refuses_to_start_without_a_secret_or_with_a_short_one() {
    let cases = [
        ("no secret", vec![]),
        ("a short secret", vec![("JWT_SECRET", "too-short")]),
    ];
    for (what, env) in cases {
        let output = run_to_end(&env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started with {what}");
        assert!(
            stderr.contains("JWT_SECRET"),
            "with {what} the error does not name JWT_SECRET: {stderr}"
        );
    }
}

/// The real binary on a free port, once its healthcheck passes.
fn serving_binary() -> Child {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = chat_command(&[("JWT_SECRET", SECRET), ("CHAT_ADDR", &addr)])
        .spawn()
        .unwrap();

    // The server needs a moment to bind: retry the probe, with a deadline.
    let started = Instant::now();
    while !healthcheck(&addr).success() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "healthcheck never passed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Stops the binary as Docker does, and waits for it to exit.
fn terminate(child: Child) -> Output {
    // The shell's built-in `kill`: no dependency on procps being installed.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_with_deadline(child, Duration::from_secs(10))
}

#[test]
fn the_binary_serves_passes_its_healthcheck_and_exits_cleanly_on_sigterm() {
    let child = serving_binary();

    let output = terminate(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {stderr}",
        output.status
    );
    // The probes ran against a server logging at info: they must not fill its log.
    assert!(
        stderr.contains("listening") && !stderr.contains("handshake refused"),
        "stderr: {stderr}"
    );
}

#[test]
fn the_healthcheck_fails_when_nothing_listens() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(!healthcheck(&format!("127.0.0.1:{port}")).success());
}

/// `SCHED_BATCH` in `sched_setscheduler(2)`.
#[cfg(target_os = "linux")]
const SCHED_BATCH: u32 = 3;

/// The scheduling policy of each of a process's threads, as the kernel reports it: the 41st
/// field of `/proc/<pid>/task/<tid>/stat`, counted after the command name, which may hold spaces.
#[cfg(target_os = "linux")]
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        let (head, fields) = stat.rsplit_once(") ").unwrap();
        let name = head.split_once(" (").unwrap().1.to_owned();
        // Fields 3 onwards follow the name: the policy, field 41, is the 39th of them.
        let policy = fields.split(' ').nth(41 - 3).unwrap().parse().unwrap();
        policies.push((name, policy));
    }
    policies
}

#[cfg(target_os = "linux")]
#[test]
fn every_thread_of_the_binary_runs_sched_batch() {
    let child = serving_binary();

    let policies = thread_policies(child.id());
    terminate(child);

    assert!(
        policies.iter().any(|(name, _)| name == "tokio-rt-worker"),
        "no runtime worker among {policies:?}"
    );
    assert!(
        policies.iter().all(|&(_, policy)| policy == SCHED_BATCH),
        "{policies:?}"
    );
}
