//! Replicas sharing one Redis (`REDIS_URL`): a real `redis-server` on a free port, started by the
//! test, and chat replicas in this process (or the real binary, where a replica must be killed).

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{
    Client, OTHER_ROOM_ID, ROOM_ID, SECRET, TestServer, test_config, test_limits,
};

/// The bounds: a killed replica's people are `left` within 15 s; fan-out comes back within
/// 5 s of Redis.
const KILLED_REPLICA_NOTICED: Duration = Duration::from_secs(15);
const REDIS_BACK: Duration = Duration::from_secs(5);

/// A `redis-server` of the test's own, on a free port, without snapshots.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    async fn start() -> Self {
        let port = free_port();
        let mut redis = Self { port, child: None };
        redis.run().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
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
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if tcp.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut line = String::new();
        let _ = BufReader::new(tcp).read_line(&mut line).await;
        line.trim() == "+PONG"
    }

    /// Kills the server (SIGKILL: all its data is gone, as after a crash).
    fn kill(&mut self) {
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

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chat replica in this process on `redis`, once it shares its rooms through it.
async fn replica(redis: &Redis) -> TestServer {
    let mut config = test_config(test_limits());
    config.redis_url = Some(redis.url());
    let server = TestServer::spawn_with(config).await;
    tokio::time::timeout(Duration::from_secs(5), server.registry.wait_for_redis())
        .await
        .expect("the replica connects to Redis");
    server
}

/// Joins and reads everything up to the newcomer's own `joined`, which comes back through Redis
/// once its presence is written there: from then on every replica counts it.
async fn arrive(server: &TestServer, email: &str, room_id: &str) -> (Client, Value) {
    let (mut client, welcome) = server.join(email, room_id).await;
    loop {
        let event = client.next_of_type("joined").await;
        if event["user"] == email {
            return (client, welcome);
        }
    }
}

async fn next_message(client: &mut Client) -> (String, String) {
    let event = client.next_of_type("message").await;
    (
        event["user"].as_str().unwrap().to_owned(),
        event["text"].as_str().unwrap().to_owned(),
    )
}

/// The next `joined` / `left` about `user`, skipping others.
async fn next_presence_of(client: &mut Client, kind: &str, user: &str) -> Value {
    loop {
        let event = client.next_of_type(kind).await;
        if event["user"] == user {
            return event;
        }
    }
}

#[tokio::test]
async fn messages_reach_members_on_the_other_replica_both_ways() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;

    ann.say("hello from one").await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(
            next_message(client).await,
            ("ann@x.org".into(), "hello from one".into())
        );
    }
    bob.say("hello from two").await;
    for client in [&mut bob, &mut ann] {
        assert_eq!(
            next_message(client).await,
            ("bob@x.org".into(), "hello from two".into())
        );
    }
}

#[tokio::test]
async fn three_receivers_see_one_order_while_senders_on_two_replicas_interleave() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", ROOM_ID).await;
    let (mut dan, _) = arrive(&two, "dan@x.org", ROOM_ID).await;
    let (mut eve, _) = arrive(&two, "eve@x.org", ROOM_ID).await;
    const EACH: usize = 40;

    let sending = async {
        tokio::join!(
            async {
                for i in 0..EACH {
                    ann.say(&format!("ann {i}")).await;
                }
            },
            async {
                for i in 0..EACH {
                    bob.say(&format!("bob {i}")).await;
                }
            },
        );
    };
    let receiving = async {
        let mut orders = Vec::new();
        for receiver in [&mut cid, &mut dan, &mut eve] {
            let mut order = Vec::new();
            for _ in 0..2 * EACH {
                order.push(next_message(receiver).await.1);
            }
            orders.push(order);
        }
        orders
    };
    let ((), orders) = tokio::join!(sending, receiving);

    assert_eq!(orders[0], orders[1], "cid (one) and dan (two) disagree");
    assert_eq!(orders[1], orders[2], "dan and eve (both two) disagree");
    for sender in ["ann", "bob"] {
        let theirs: Vec<&String> = orders[0]
            .iter()
            .filter(|text| text.starts_with(sender))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{sender} {i}")).collect();
        assert_eq!(
            theirs,
            sent.iter().collect::<Vec<_>>(),
            "{sender}'s own order"
        );
    }
}

#[tokio::test]
async fn presence_counts_people_on_every_replica_and_tabs_on_two_replicas_as_one() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, welcome) = arrive(&one, "ann@x.org", ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["ann@x.org"]));

    let (mut bob, welcome) = arrive(&two, "bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    let joined = next_presence_of(&mut ann, "joined", "bob@x.org").await;
    assert_eq!(
        (joined["online"].as_u64(), joined["first"].as_bool()),
        (Some(2), Some(true))
    );

    // Ann's second tab, on the other replica: still two people.
    let (ann_two, welcome) = two.join("ann@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    for client in [&mut ann, &mut bob] {
        let joined = next_presence_of(client, "joined", "ann@x.org").await;
        assert_eq!(
            (joined["online"].as_u64(), joined["first"].as_bool()),
            (Some(2), Some(false))
        );
    }

    // A third person on replica one sees everyone, once each.
    let (mut cid, welcome) = arrive(&one, "cid@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org", "cid@x.org"])
    );

    // Ann closes the tab on replica one: she is still there on two.
    ann.leave().await;
    let left = next_presence_of(&mut bob, "left", "ann@x.org").await;
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(3), Some(false))
    );
    // ... and then the other one.
    ann_two.leave().await;
    for client in [&mut bob, &mut cid] {
        let left = loop {
            let left = next_presence_of(client, "left", "ann@x.org").await;
            if left["last"] == true {
                break left;
            }
        };
        assert_eq!(left["online"].as_u64(), Some(2));
    }
}

#[tokio::test]
async fn a_room_deleted_through_one_replica_closes_its_members_on_every_replica() {
    let redis = Redis::start().await;
    let (one, two, three) = (
        replica(&redis).await,
        replica(&redis).await,
        replica(&redis).await,
    );
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;

    // The website reaches one replica; the others hear it through Redis.
    assert_eq!(one.notify_deleted(ROOM_ID, None).await, 202);

    for member in [&mut ann, &mut bob] {
        let event =
            tokio::time::timeout(Duration::from_secs(2), member.next_of_type("room_deleted"))
                .await
                .expect("told within 2 s on every replica");
        assert_eq!(event["room_id"], ROOM_ID);
        assert_eq!(member.closed_with().await, 4004);
    }
    // A replica that had nobody in the room turns a ticket still out for it away too.
    let mut late = three.connect("late@x.org", ROOM_ID).await;
    assert_eq!(late.next_event().await["type"], "room_deleted");
    assert_eq!(late.closed_with().await, 4004);
}

#[tokio::test]
async fn rooms_stay_apart_across_replicas() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&two, "cid@x.org", ROOM_ID).await;
    let (mut bob, welcome) = arrive(&two, "bob@x.org", OTHER_ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["bob@x.org"]));

    ann.say("for the first room").await;
    assert_eq!(next_message(&mut cid).await.1, "for the first room");
    bob.say("for the other room").await;

    // Had ann's message reached bob's room, it would have come first: it was published first.
    assert_eq!(
        next_message(&mut bob).await,
        ("bob@x.org".into(), "for the other room".into())
    );
    assert_eq!(next_message(&mut ann).await.1, "for the first room");
    cid.say("still apart").await;
    assert_eq!(next_message(&mut ann).await.1, "still apart");
}

#[tokio::test]
async fn after_a_redis_restart_members_on_one_replica_kept_talking_and_fan_out_comes_back() {
    let mut redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;
    let mut one_up = one.registry.watch_redis().unwrap();
    let mut two_up = two.registry.watch_redis().unwrap();

    redis.kill();
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| !*up).await;
        let _ = two_up.wait_for(|up| !*up).await;
    })
    .await
    .expect("both replicas notice that Redis is gone");
    assert_eq!(
        healthcheck(&one).await,
        (true, true),
        "healthy but degraded"
    );

    // Members on the same replica still hear each other.
    ann.say("while Redis is down").await;
    for client in [&mut ann, &mut cid] {
        assert_eq!(next_message(client).await.1, "while Redis is down");
    }

    redis.run().await;
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| *up).await;
        let _ = two_up.wait_for(|up| *up).await;
    })
    .await
    .expect("both replicas share their rooms again within 5 s of Redis coming back");
    assert_eq!(healthcheck(&one).await, (true, false), "no longer degraded");

    bob.say("Redis is back").await;
    for client in [&mut ann, &mut cid, &mut bob] {
        assert_eq!(
            next_message(client).await,
            ("bob@x.org".into(), "Redis is back".into())
        );
    }
    // Presence was rebuilt in the new Redis: a newcomer on either replica sees everyone.
    let (_dan, welcome) = arrive(&two, "dan@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org", "cid@x.org", "dan@x.org"])
    );
    let joined = next_presence_of(&mut ann, "joined", "dan@x.org").await;
    assert_eq!(joined["online"].as_u64(), Some(4));
}

/// `chat healthcheck` against `server`: (exit 0, reported degraded). Run off the runtime's thread,
/// which may be the one serving it.
async fn healthcheck(server: &TestServer) -> (bool, bool) {
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

/// The real binary as a replica on `redis`, on a free port.
struct Process {
    child: Child,
    server: TestServer,
}

impl Process {
    async fn start(redis: &Redis) -> (Self, u16) {
        let port = free_port();
        let child = Command::new(BINARY)
            .env_clear()
            .env("JWT_SECRET", SECRET)
            .env("CHAT_ADDR", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", redis.url())
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
    async fn until_up(&self) {
        for _ in 0..200 {
            if healthcheck(&self.server).await == (true, false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the chat binary did not come up with Redis");
    }

    fn signal(&self, signal: &str) {
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

#[tokio::test]
async fn a_killed_replicas_people_leave_the_other_replicas_within_15_seconds() {
    let redis = Redis::start().await;
    let one = replica(&redis).await;
    let (two, _) = Process::start(&redis).await;
    two.until_up().await;
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (_bob, welcome) = arrive(&two.server, "bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    next_presence_of(&mut ann, "joined", "bob@x.org").await;

    two.signal("KILL");

    let left = tokio::time::timeout(KILLED_REPLICA_NOTICED, async {
        loop {
            match ann.ws_next_event().await {
                Some(event) if event["type"] == "left" && event["user"] == "bob@x.org" => {
                    return event;
                }
                Some(_) => continue,
                None => panic!("ann's connection ended"),
            }
        }
    })
    .await
    .expect("bob is announced as left within 15 s of his replica's death");
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(1), Some(true))
    );
}

#[tokio::test]
async fn a_replica_stopped_with_sigterm_takes_its_people_out_at_once() {
    let redis = Redis::start().await;
    let one = replica(&redis).await;
    let (two, _) = Process::start(&redis).await;
    two.until_up().await;
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two.server, "bob@x.org", ROOM_ID).await;
    next_presence_of(&mut ann, "joined", "bob@x.org").await;

    two.signal("TERM");

    let left = next_presence_of(&mut ann, "left", "bob@x.org").await;
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(bob.closed_with().await, 1001);
}
