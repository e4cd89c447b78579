//! A `redis-server` of the test's own on a free port (killed and started again on the same port
//! when a test restarts Redis), chat replicas on one Redis or on several shards, and the steps the
//! Redis tests share.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{Client, SECRET, TestServer, test_config, test_limits};

/// The bounds: a killed replica's people are `left` within 15 s; fan-out comes back within
/// 5 s of Redis.
pub const KILLED_REPLICA_NOTICED: Duration = Duration::from_secs(15);
pub const REDIS_BACK: Duration = Duration::from_secs(5);

/// A `redis-server` of the test's own, on a free port, without snapshots.
pub struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Self {
        let port = free_port();
        let mut redis = Self { port, child: None };
        redis.run().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, after [`Redis::kill`]) on its port, and waits until it answers.
    pub async fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not answer PING on port {}", self.port);
    }

    async fn ping(&self) -> bool {
        self.command("PING").await.as_deref() == Some("+PONG")
    }

    /// The first line of Redis's answer to an inline command (`EXISTS key` answers `:1` or `:0`);
    /// `None` when the server does not answer.
    pub async fn command(&self, command: &str) -> Option<String> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        tcp.write_all(format!("{command}\r\n").as_bytes())
            .await
            .ok()?;
        let mut line = String::new();
        BufReader::new(tcp).read_line(&mut line).await.ok()?;
        Some(line.trim().to_owned())
    }

    /// Kills the server (SIGKILL: all its data is gone, as after a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `REDIS_URL` for rooms spread over `shards`, in this order.
pub fn shards_url(shards: &[&Redis]) -> String {
    shards
        .iter()
        .map(|redis| redis.url())
        .collect::<Vec<_>>()
        .join(",")
}

/// A chat replica in this process on `redis`, once it shares its rooms through it.
pub async fn replica(redis: &Redis) -> TestServer {
    replica_on(&[redis]).await
}

/// A chat replica in this process with its rooms spread over `shards`, once it shares them
/// through every one.
pub async fn replica_on(shards: &[&Redis]) -> TestServer {
    let mut config = test_config(test_limits());
    config.redis_url = Some(shards_url(shards).parse().unwrap());
    let server = TestServer::spawn_with(config).await;
    tokio::time::timeout(Duration::from_secs(5), server.registry.wait_for_redis())
        .await
        .expect("the replica connects to Redis");
    server
}

/// Joins and reads everything up to the newcomer's own `joined`, which comes back through Redis
/// once its presence is written there: from then on every replica counts it.
pub async fn arrive(server: &TestServer, email: &str, room_id: &str) -> (Client, Value) {
    let (mut client, welcome) = server.join(email, room_id).await;
    loop {
        let event = client.next_of_type("joined").await;
        if event["user"] == email {
            return (client, welcome);
        }
    }
}

pub async fn next_message(client: &mut Client) -> (String, String) {
    let event = client.next_of_type("message").await;
    (
        event["user"].as_str().unwrap().to_owned(),
        event["text"].as_str().unwrap().to_owned(),
    )
}

/// The next `joined` / `left` about `user`, skipping others.
pub async fn next_presence_of(client: &mut Client, kind: &str, user: &str) -> Value {
    loop {
        let event = client.next_of_type(kind).await;
        if event["user"] == user {
            return event;
        }
    }
}

/// `chat healthcheck` against `server`: (exit 0, reported degraded). Run off the runtime's thread,
/// which may be the one serving it.
pub async fn healthcheck(server: &TestServer) -> (bool, bool) {
    let addr = server.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BINARY)
            .arg("healthcheck")
            .env_clear()
            .env("CHAT_ADDR", addr)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).contains("degraded"),
    )
}

const BINARY: &str = env!("CARGO_BIN_EXE_chat");

/// The real binary as a replica on the Redis of `REDIS_URL` `redis_url`, on a free port.
pub struct Process {
    child: Child,
    pub server: TestServer,
}

impl Process {
    pub async fn start(redis_url: &str) -> (Self, u16) {
        let port = free_port();
        let child = Command::new(BINARY)
            .env_clear()
            .env("JWT_SECRET", SECRET)
            .env("CHAT_ADDR", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", redis_url)
            .env("CHAT_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (
            Self {
                child,
                server: TestServer::at(([127, 0, 0, 1], port).into()),
            },
            port,
        )
    }

    /// Waits until the process answers, sharing its rooms through Redis.
    pub async fn until_up(&self) {
        for _ in 0..200 {
            if healthcheck(&self.server).await == (true, false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the chat binary did not come up with Redis");
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two senders interleave `each` messages; every receiver gets them in one order, each sender's
/// own order kept.
pub async fn one_order<const N: usize>(
    senders: [&mut Client; 2],
    receivers: [&mut Client; N],
    each: usize,
) {
    let [first, second] = senders;
    let sending = async {
        tokio::join!(
            async {
                for i in 0..each {
                    first.say(&format!("first {i}")).await;
                }
            },
            async {
                for i in 0..each {
                    second.say(&format!("second {i}")).await;
                }
            },
        );
    };
    let receiving = async {
        let mut orders = Vec::new();
        for receiver in receivers {
            let mut order = Vec::new();
            for _ in 0..2 * each {
                order.push(next_message(receiver).await.1);
            }
            orders.push(order);
        }
        orders
    };
    let ((), orders) = tokio::join!(sending, receiving);
    for (i, order) in orders.iter().enumerate().skip(1) {
        assert_eq!(&orders[0], order, "receivers 0 and {i} disagree");
    }
    for sender in ["first", "second"] {
        let theirs: Vec<&String> = orders[0]
            .iter()
            .filter(|text| text.starts_with(sender))
            .collect();
        let sent: Vec<String> = (0..each).map(|i| format!("{sender} {i}")).collect();
        assert_eq!(theirs, sent.iter().collect::<Vec<_>>(), "{sender}'s order");
    }
}

/// The `left` of `user`, whose replica was killed, within [`KILLED_REPLICA_NOTICED`], skipping
/// everything else `member` receives meanwhile.
pub async fn left_after_a_kill(member: &mut Client, user: &str) -> Value {
    tokio::time::timeout(KILLED_REPLICA_NOTICED, async {
        loop {
            match member.ws_next_event().await {
                Some(event) if event["type"] == "left" && event["user"] == user => return event,
                Some(_) => continue,
                None => panic!("the member's connection ended"),
            }
        }
    })
    .await
    .expect("announced as left within 15 s of the replica's death")
}
