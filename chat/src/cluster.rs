//! Several chat processes as one service, through Redis (`REDIS_URL`).
//!
//! Only the room registry uses this module; the handshake, the connections and the event formats
//! know nothing of it. Without `REDIS_URL` none of it runs.
//!
//! **Messages.** Each room has a Redis pub/sub channel, `chat:room:<room id>`, to which every
//! replica with members in the room subscribes. A message is serialized once, on the replica of its
//! sender, and published; every replica — the sender's included — delivers what the channel brings
//! in the order Redis brings it, so every member everywhere sees a room's messages in one order.
//! The payload is the event's JSON itself (after a one-byte tag), so a receiving replica hands the
//! same bytes to all its members without parsing or serializing anything.
//!
//! **Presence.** Each replica keeps, per room, how many tabs every person holds on every replica.
//! A replica writes its own part into the room's hash `chat:room:<room id>:presence` (field
//! `<replica>\x1f<email>`, value the tab count) and announces the change on the room's channel in
//! the same Lua script, so the hash and the channel never disagree; every replica applies the
//! announcements in channel order and so counts the same people (`online`, `members`, `first` /
//! `last`, the summaries). A replica that opens a room subscribes first, then reads the hash, and
//! applies what the channel brought meanwhile on top of it.
//!
//! **Liveness.** Each replica refreshes `chat:replica:<id>` (TTL [`REPLICA_TTL`]) every
//! [`HEARTBEAT`]. The others check the key of every replica they count in their rooms: once it has
//! expired (the replica was killed, or lost Redis for longer than the TTL) its people are announced
//! as `left`. SIGTERM takes a replica's people out of every room at once (a goodbye). A replica that
//! finds its own key gone (Redis restarted, or it was presumed dead) writes its whole state again.
//!
//! **Redis down.** Commands fail fast and nothing is retried behind the members' backs: a message
//! that cannot be published is delivered to the members on this replica at once, and presence
//! changes are applied here; so members on one replica keep talking. The client reconnects every
//! [`RECONNECT_DELAY_MS`]; once connected, the replica resubscribes, writes its state again, reads
//! everybody else's and only then publishes through Redis again ([`Outgoing::Resync`]). The log
//! says "unreachable" once per outage and "reachable again" once.
//!
//! Everything this replica sends goes through one task ([`Outgoing`], in order), so a join, the
//! messages after it and the leave reach Redis in the order they happened.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfig, Error as RedisError, EventInterface,
    Expiration, HashesInterface, KeysInterface, PubsubInterface, ReconnectPolicy, Value,
};
use fred::types::{ClusterHash, CustomCommand};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::protocol::Frame;
use crate::rooms::{Remote, Room, RoomRegistry, WeakRegistry, lock};

/// How often a replica refreshes its liveness key and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a replica's liveness key outlives its last refresh. A killed replica's people are
/// announced as `left` within `REPLICA_TTL` + `HEARTBEAT` (+ one round trip).
pub const REPLICA_TTL: Duration = Duration::from_secs(5);
/// A room's presence hash outlives the last replica that refreshed it by this much.
const ROOM_TTL: Duration = Duration::from_secs(60);
/// Pause between two reconnection attempts (no limit on attempts).
pub const RECONNECT_DELAY_MS: u32 = 500;
/// A command that takes longer fails, and its message is delivered locally.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a first join waits for its room to be loaded before going on with what it knows.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a shutting-down replica waits for its goodbye to be written.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pub/sub messages the client buffers for the dispatcher before it counts as lagging.
const MESSAGE_BUFFER: usize = 8192;
/// Items the sending task takes at once (one pipeline, one round trip).
const MAX_BATCH: usize = 512;

/// A replica's name in Redis: random, new at every start.
pub type ReplicaId = Arc<str>;

/// What this replica sends, in order, through its one sending task.
pub enum Outgoing {
    /// A serialized `message` event for everyone in the room.
    Message { room: Arc<Room>, frame: Frame },
    /// This replica now holds `tabs` sockets of `user` in the room.
    Tabs {
        room: Arc<Room>,
        user: String,
        tabs: usize,
    },
    /// Subscribe to a room opened here and load who is in it elsewhere.
    Load {
        room: Arc<Room>,
        done: oneshot::Sender<()>,
    },
    /// The last member here left: stop listening (unless the room was opened again meanwhile).
    Unsubscribe { room_id: String },
    /// After a reconnection: resubscribe, write this replica's state, read everybody else's.
    Resync,
    /// Shutting down: take this replica's people out of every room.
    Goodbye { done: oneshot::Sender<()> },
    /// The room was deleted: every replica closes its members there.
    RoomDeleted { room_id: String },
}

/// The Redis side of a registry: two connections (commands, and subscriptions) and the state of
/// the link.
pub struct Cluster {
    pub me: ReplicaId,
    commands: Client,
    subscriber: SubscriberClient,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Published through Redis (true) or delivered locally (false).
    up: watch::Sender<bool>,
    /// Wakes the heartbeat early (after a reconnection).
    nudge: Notify,
    resync_queued: AtomicBool,
    /// An outage was logged and its end is not yet.
    outage_logged: AtomicBool,
    /// When the link last came up: other replicas are judged dead only a TTL after it.
    up_since: Mutex<Option<Instant>>,
    /// Rooms whose presence changes here could not be written; written again on resync.
    dirty: Mutex<HashSet<String>>,
}

/// The tasks' half of [`Cluster::new`]: started by [`Cluster::start`] once the registry exists.
pub struct Receivers {
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
}

/// A presence announcement as it travels on a room's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum WireOp {
    /// `replica` holds `tabs` sockets of `user`.
    Tabs {
        replica: String,
        user: String,
        tabs: usize,
    },
    /// `replica` holds exactly these people, nobody else.
    All {
        replica: String,
        people: Vec<(String, usize)>,
    },
}

/// The first byte of a payload on a room channel.
const TAG_MESSAGE: u8 = b'm';
const TAG_PRESENCE: u8 = b'p';

/// Writes one replica's part of a room's presence hash and announces it on the room's channel,
/// atomically. KEYS[1]: the hash. ARGV: channel, payload, hash TTL (ms), the replica's field
/// prefix, mode (`one`: set the fields that follow; `all`: first drop every field of this
/// replica), then email / tabs pairs (0 removes).
const WRITE_PRESENCE: &str = r"
local key, prefix = KEYS[1], ARGV[4]
if ARGV[5] == 'all' then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, #prefix) == prefix then redis.call('HDEL', key, field) end
  end
end
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', key, prefix .. ARGV[i])
  else
    redis.call('HSET', key, prefix .. ARGV[i], ARGV[i + 1])
  end
end
if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
";

/// Separates the replica from the email in a presence field (emails cannot contain it).
const FIELD_SEPARATOR: char = '\u{1f}';

/// `EVAL`, sent as a plain command: fred's pipelines take no scripts otherwise.
fn eval_command() -> CustomCommand {
    CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false)
}

/// The start of every room's channel name.
const CHANNEL_PREFIX: &str = "chat:room:";
/// Every replica listens here for rooms deleted by their owners (the payload is the room id),
/// whether it has members in them or not: it must turn away the tickets still out for them.
const DELETED_CHANNEL: &str = "chat:rooms-deleted";

fn channel(room_id: &str) -> String {
    format!("{CHANNEL_PREFIX}{room_id}")
}

fn presence_key(room_id: &str) -> String {
    format!("chat:room:{room_id}:presence")
}

fn replica_key(replica: &str) -> String {
    format!("chat:replica:{replica}")
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Cluster {
    /// Builds the two Redis clients for `url` (nothing is connected yet).
    pub fn new(url: &str) -> Result<(Self, Receivers), RedisError> {
        let mut config = RedisConfig::from_url(url)?;
        // Start even when Redis is down: the reconnection policy applies to the first connection.
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_constant(0, RECONNECT_DELAY_MS))
            .with_connection_config(|connection| {
                connection.connection_timeout = COMMAND_TIMEOUT;
                connection.internal_command_timeout = COMMAND_TIMEOUT;
                // A command in flight when the connection drops is not sent again after the
                // reconnection: its message has been delivered locally by then.
                connection.max_command_attempts = 1;
                connection.tcp.nodelay = Some(true);
            })
            .with_performance_config(|performance| {
                performance.default_command_timeout = COMMAND_TIMEOUT;
            });
        let commands = builder.build()?;
        builder.with_performance_config(|performance| {
            performance.broadcast_channel_capacity = MESSAGE_BUFFER;
        });
        let subscriber = builder.build_subscriber_client()?;
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let me: ReplicaId = format!("{:016x}", rand::random::<u64>()).into();
        let cluster = Self {
            me,
            commands,
            subscriber,
            outgoing,
            up: watch::Sender::new(false),
            nudge: Notify::new(),
            resync_queued: AtomicBool::new(false),
            outage_logged: AtomicBool::new(false),
            up_since: Mutex::new(None),
            dirty: Mutex::new(HashSet::new()),
        };
        Ok((
            cluster,
            Receivers {
                outgoing: outgoing_rx,
            },
        ))
    }

    /// Connects and starts the tasks: sending, receiving, heartbeat, connection events.
    pub fn start(self: &Arc<Self>, receivers: Receivers, registry: WeakRegistry) {
        // Listening before connecting: nothing the channel brings is missed.
        let messages = self.subscriber.message_rx();
        let events = [
            (self.commands.error_rx(), self.commands.reconnect_rx()),
            (self.subscriber.error_rx(), self.subscriber.reconnect_rx()),
        ];
        drop(self.commands.connect());
        drop(self.subscriber.connect());
        tokio::spawn(send_loop(
            self.clone(),
            registry.clone(),
            receivers.outgoing,
        ));
        tokio::spawn(receive_loop(self.clone(), registry.clone(), messages));
        tokio::spawn(heartbeat_loop(self.clone(), registry));
        for (errors, reconnects) in events {
            tokio::spawn(watch_connection(self.clone(), errors, reconnects));
        }
    }

    /// Queues `item` for the sending task. Never waits.
    pub fn send(&self, item: Outgoing) {
        // The task lives as long as the registry; a send after it ended has nobody to reach.
        let _ = self.outgoing.send(item);
    }

    /// Whether events go through Redis now (false: degraded, rooms are local to this replica).
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Follows [`Cluster::is_up`].
    pub fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Subscribes to `room` and loads who is in it elsewhere, before the first member here is
    /// welcomed. Gives up after [`LOAD_TIMEOUT`] (the room then starts with what this replica
    /// knows, and the next resync completes it).
    pub async fn load(&self, room: &Arc<Room>) {
        let (done, loaded) = oneshot::channel();
        self.send(Outgoing::Load {
            room: room.clone(),
            done,
        });
        let _ = tokio::time::timeout(LOAD_TIMEOUT, loaded).await;
    }

    /// Takes this replica's people out of every room on Redis and closes the connections.
    pub async fn leave(&self) {
        let (done, written) = oneshot::channel();
        self.send(Outgoing::Goodbye { done });
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, written).await;
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let _ = self.subscriber.quit().await;
            let _ = self.commands.quit().await;
        })
        .await;
    }

    /// Sets this replica's liveness key for another [`REPLICA_TTL`]; what it held before (`None`:
    /// it had expired, or Redis lost it).
    async fn refresh_liveness(&self) -> Result<Option<String>, RedisError> {
        self.commands
            .set(
                replica_key(&self.me),
                "1",
                Some(Expiration::PX(millis(REPLICA_TTL))),
                None,
                true,
            )
            .await
    }

    fn connected(&self) -> bool {
        self.commands.is_connected() && self.subscriber.is_connected()
    }

    /// Events stop going through Redis. Logged once per outage, when it begins (a Redis that is
    /// not there at start is the server's to report).
    fn set_down(&self, reason: &dyn Display) {
        let was_up = self.up.send_replace(false);
        if was_up && !self.outage_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %reason,
                "Redis unreachable: degraded, rooms are local to this replica until it is back"
            );
        }
    }

    fn set_up(&self) {
        *lock(&self.up_since) = Some(Instant::now());
        let was_up = self.up.send_replace(true);
        if self.outage_logged.swap(false, Ordering::Relaxed) {
            tracing::info!(replica = %self.me, "Redis reachable again: rooms shared again");
        } else if !was_up {
            tracing::info!(replica = %self.me, "connected to Redis: rooms shared with the other replicas");
        }
    }

    fn request_resync(&self) {
        if !self.resync_queued.swap(true, Ordering::Relaxed) {
            self.send(Outgoing::Resync);
        }
    }

    fn mark_dirty(&self, room_id: &str) {
        lock(&self.dirty).insert(room_id.to_owned());
    }

    /// `PUBLISH` of a message event: its JSON after the tag.
    fn message_payload(frame: &Frame) -> Bytes {
        let mut payload = Vec::with_capacity(frame.len() + 1);
        payload.push(TAG_MESSAGE);
        payload.extend_from_slice(frame.as_bytes());
        Bytes::from(payload)
    }

    /// `EVAL` of [`WRITE_PRESENCE`] for `op` about `room_id`: `all` replaces this replica's part.
    fn presence_args(&self, room_id: &str, op: &WireOp) -> Vec<String> {
        let mut payload = String::from(char::from(TAG_PRESENCE));
        // A small struct of strings and numbers cannot fail to serialize.
        payload.push_str(&serde_json::to_string(op).unwrap_or_default());
        let prefix = format!("{}{FIELD_SEPARATOR}", self.me);
        let mut args = vec![
            WRITE_PRESENCE.to_owned(),
            "1".to_owned(),
            presence_key(room_id),
            channel(room_id),
            payload,
            millis(ROOM_TTL).to_string(),
            prefix,
        ];
        match op {
            WireOp::Tabs { user, tabs, .. } => {
                args.push("one".into());
                args.push(user.clone());
                args.push(tabs.to_string());
            }
            WireOp::All { people, .. } => {
                args.push("all".into());
                for (user, tabs) in people {
                    args.push(user.clone());
                    args.push(tabs.to_string());
                }
            }
        }
        args
    }

    /// Who is in `room_id` on the replicas that are alive, this one left out.
    async fn snapshot(
        &self,
        room_id: &str,
    ) -> Result<HashMap<ReplicaId, HashMap<String, usize>>, RedisError> {
        let fields: HashMap<String, String> = self.commands.hgetall(presence_key(room_id)).await?;
        let mut by_replica: HashMap<ReplicaId, HashMap<String, usize>> = HashMap::new();
        for (field, tabs) in fields {
            let Some((replica, user)) = field.split_once(FIELD_SEPARATOR) else {
                continue;
            };
            let Ok(tabs) = tabs.parse::<usize>() else {
                continue;
            };
            if replica != &*self.me && tabs > 0 {
                by_replica
                    .entry(replica.into())
                    .or_default()
                    .insert(user.to_owned(), tabs);
            }
        }
        let mut alive = HashMap::new();
        for (replica, people) in by_replica {
            let exists: u32 = self.commands.exists(replica_key(&replica)).await?;
            if exists > 0 {
                alive.insert(replica, people);
            }
        }
        Ok(alive)
    }
}

/// The sending task: takes what is queued, in order, and sends runs of messages and presence
/// changes as one pipeline.
async fn send_loop(
    cluster: Arc<Cluster>,
    registry: WeakRegistry,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut batch = Vec::new();
    let mut run = Vec::new();
    while let Some(first) = queue.recv().await {
        let Some(registry) = registry.upgrade() else {
            return;
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        for item in batch.drain(..) {
            match item {
                Outgoing::Message { .. } | Outgoing::Tabs { .. } => run.push(item),
                control => {
                    publish(&cluster, &registry, &mut run).await;
                    control_step(&cluster, &registry, control).await;
                }
            }
        }
        publish(&cluster, &registry, &mut run).await;
    }
}

/// Publishes a run of messages and presence changes in one pipeline; what cannot be published is
/// delivered or applied on this replica.
async fn publish(cluster: &Cluster, registry: &RoomRegistry, run: &mut Vec<Outgoing>) {
    if run.is_empty() {
        return;
    }
    if !cluster.is_up() {
        for item in run.drain(..) {
            local_fallback(cluster, registry, item);
        }
        return;
    }
    let pipeline = cluster.commands.pipeline();
    for item in run.iter() {
        let queued: Result<(), RedisError> = match item {
            Outgoing::Message { room, frame } => {
                pipeline
                    .publish(channel(room.id()), Cluster::message_payload(frame))
                    .await
            }
            Outgoing::Tabs { room, user, tabs } => {
                let op = WireOp::Tabs {
                    replica: cluster.me.to_string(),
                    user: user.clone(),
                    tabs: *tabs,
                };
                pipeline
                    .custom(eval_command(), cluster.presence_args(room.id(), &op))
                    .await
            }
            _ => Ok(()),
        };
        if let Err(error) = queued {
            tracing::warn!(%error, "could not queue a Redis command");
        }
    }
    let mut results = pipeline.try_all::<Value>().await.into_iter();
    for item in run.drain(..) {
        match results.next() {
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                cluster.set_down(&error);
                local_fallback(cluster, registry, item);
            }
            None => {
                cluster.set_down(&"no answer from Redis");
                local_fallback(cluster, registry, item);
            }
        }
    }
}

/// What a member here should see when Redis cannot carry it: the message, or the presence change,
/// on this replica only.
fn local_fallback(cluster: &Cluster, registry: &RoomRegistry, item: Outgoing) {
    match item {
        Outgoing::Message { room, frame } => registry.deliver(&room, &frame),
        Outgoing::Tabs { room, user, tabs } => {
            cluster.mark_dirty(room.id());
            registry.apply(
                &room,
                Remote::Tabs {
                    replica: cluster.me.clone(),
                    user,
                    tabs,
                },
            );
        }
        _ => {}
    }
}

async fn control_step(cluster: &Cluster, registry: &RoomRegistry, item: Outgoing) {
    match item {
        Outgoing::Load { room, done } => {
            if cluster.is_up() {
                registry.hold(&room);
                if let Err(error) = load_rooms(cluster, registry, std::slice::from_ref(&room)).await
                {
                    cluster.set_down(&error);
                    registry.release(&room);
                }
            }
            let _ = done.send(());
        }
        Outgoing::Unsubscribe { room_id } => {
            if registry.room(&room_id).is_none()
                && cluster.is_up()
                && let Err(error) = cluster.subscriber.unsubscribe(channel(&room_id)).await
            {
                cluster.set_down(&error);
            }
        }
        Outgoing::Resync => {
            cluster.resync_queued.store(false, Ordering::Relaxed);
            if cluster.connected() {
                resync(cluster, registry).await;
            }
        }
        Outgoing::Goodbye { done } => {
            if cluster.is_up() {
                goodbye(cluster, registry).await;
            }
            let _ = done.send(());
        }
        Outgoing::RoomDeleted { room_id } => {
            // Already done on this replica; without Redis the others learn it at their members'
            // next reconnect (the ticket request answers 404).
            if cluster.is_up()
                && let Err(error) = cluster
                    .commands
                    .publish::<Value, _, _>(DELETED_CHANNEL, room_id)
                    .await
            {
                tracing::warn!(%error, "could not pass a room deletion on to the other replicas");
                cluster.set_down(&error);
            }
        }
        Outgoing::Message { .. } | Outgoing::Tabs { .. } => {}
    }
}

/// Subscribes to `rooms` and merges who is in each elsewhere into what this replica knows. The
/// rooms hold what their channels bring until their snapshot is in.
async fn load_rooms(
    cluster: &Cluster,
    registry: &RoomRegistry,
    rooms: &[Arc<Room>],
) -> Result<(), RedisError> {
    if rooms.is_empty() {
        return Ok(());
    }
    let channels: Vec<String> = rooms.iter().map(|room| channel(room.id())).collect();
    cluster.subscriber.subscribe(channels).await?;
    for room in rooms {
        let elsewhere = cluster.snapshot(room.id()).await?;
        registry.loaded(room, elsewhere);
    }
    Ok(())
}

/// After a reconnection, or when this replica's liveness key was gone: resubscribe, write this
/// replica's whole state (and nobody in the rooms it left meanwhile), read everybody else's.
async fn resync(cluster: &Cluster, registry: &RoomRegistry) {
    let rooms = registry.rooms();
    for room in &rooms {
        registry.hold(room);
    }
    let result = async {
        cluster.subscriber.subscribe(DELETED_CHANNEL).await?;
        cluster.refresh_liveness().await?;
        let dirty: Vec<String> = lock(&cluster.dirty).drain().collect();
        let mut writes: Vec<(String, Vec<(String, usize)>)> = rooms
            .iter()
            .map(|room| (room.id().to_owned(), registry.people_here(room)))
            .collect();
        for room_id in dirty {
            if registry.room(&room_id).is_none() {
                writes.push((room_id, Vec::new()));
            }
        }
        write_states(cluster, writes).await?;
        load_rooms(cluster, registry, &rooms).await
    }
    .await;
    match result {
        Ok(()) => cluster.set_up(),
        Err(error) => {
            cluster.set_down(&error);
            for room in &rooms {
                registry.release(room);
            }
        }
    }
}

/// Writes this replica's whole part of each room (`all`), in one pipeline.
async fn write_states(
    cluster: &Cluster,
    writes: Vec<(String, Vec<(String, usize)>)>,
) -> Result<(), RedisError> {
    if writes.is_empty() {
        return Ok(());
    }
    let pipeline = cluster.commands.pipeline();
    for (room_id, people) in writes {
        let op = WireOp::All {
            replica: cluster.me.to_string(),
            people,
        };
        let _: () = pipeline
            .custom(eval_command(), cluster.presence_args(&room_id, &op))
            .await?;
    }
    for result in pipeline.try_all::<Value>().await {
        result?;
    }
    Ok(())
}

/// SIGTERM: nobody of this replica is in any room any more, and it is not alive.
async fn goodbye(cluster: &Cluster, registry: &RoomRegistry) {
    let mut rooms: HashSet<String> = registry
        .rooms()
        .iter()
        .map(|room| room.id().to_owned())
        .collect();
    rooms.extend(lock(&cluster.dirty).drain());
    let writes = rooms.into_iter().map(|id| (id, Vec::new())).collect();
    if let Err(error) = write_states(cluster, writes).await {
        tracing::warn!(%error, "could not take this replica's people out of Redis");
    }
    let _: Result<Value, _> = cluster.commands.del(replica_key(&cluster.me)).await;
}

/// The receiving task: what the room channels bring, in Redis's order, to the rooms here.
async fn receive_loop(
    cluster: Arc<Cluster>,
    registry: WeakRegistry,
    mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "fell behind the Redis channels: events were lost, presence is reloaded"
                );
                cluster.request_resync();
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        if message.channel == DELETED_CHANNEL {
            if let Some(room_id) = message.value.as_string() {
                registry.room_deleted_here(&room_id);
            }
            continue;
        }
        let Some(room_id) = message.channel.strip_prefix(CHANNEL_PREFIX) else {
            continue;
        };
        let Some(room) = registry.room(room_id) else {
            continue;
        };
        let Some(payload) = message.value.into_bytes() else {
            continue;
        };
        match payload.first() {
            Some(&TAG_MESSAGE) => match Utf8Bytes::try_from(payload.slice(1..)) {
                Ok(frame) => registry.deliver(&room, &frame),
                Err(error) => tracing::warn!(%error, "a room channel carried a bad message"),
            },
            Some(&TAG_PRESENCE) => match serde_json::from_slice::<WireOp>(&payload[1..]) {
                Ok(WireOp::Tabs {
                    replica,
                    user,
                    tabs,
                }) => registry.apply(
                    &room,
                    Remote::Tabs {
                        replica: replica.into(),
                        user,
                        tabs,
                    },
                ),
                Ok(WireOp::All { replica, people }) => registry.apply(
                    &room,
                    Remote::All {
                        replica: replica.into(),
                        people: people.into_iter().collect(),
                    },
                ),
                Err(error) => tracing::warn!(%error, "a room channel carried bad presence"),
            },
            _ => {}
        }
        // Let the writers drain their queues between two events: a burst from Redis would
        // otherwise fill every member's queue before any writer runs (and close them with 4008).
        tokio::task::yield_now().await;
    }
}

/// Every [`HEARTBEAT`] (or at once after a reconnection): refresh this replica's liveness key,
/// resync if the link just came back or the key was gone, keep the room hashes alive, and take
/// the people of replicas whose key expired out of the rooms.
async fn heartbeat_loop(cluster: Arc<Cluster>, registry: WeakRegistry) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The room hashes live ROOM_TTL and every presence write renews them: refreshing them a few
    // times per TTL is plenty, every heartbeat would be sixty times that.
    let rooms_every = (ROOM_TTL.as_secs() / HEARTBEAT.as_secs() / 4).max(1);
    let mut beats: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cluster.nudge.notified() => {}
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        if !cluster.connected() {
            cluster.set_down(&"connection lost");
            continue;
        }
        match cluster.refresh_liveness().await {
            Err(error) => {
                cluster.set_down(&error);
                continue;
            }
            Ok(previous) if previous.is_none() || !cluster.is_up() => {
                cluster.request_resync();
                continue;
            }
            Ok(_) => {}
        }
        beats += 1;
        if beats.is_multiple_of(rooms_every)
            && let Err(error) = keep_rooms_alive(&cluster, &registry).await
        {
            cluster.set_down(&error);
            continue;
        }
        let settled =
            lock(&cluster.up_since).is_some_and(|since| since.elapsed() >= REPLICA_TTL + HEARTBEAT);
        if settled && let Err(error) = forget_dead_replicas(&cluster, &registry).await {
            cluster.set_down(&error);
        }
    }
}

async fn keep_rooms_alive(cluster: &Cluster, registry: &RoomRegistry) -> Result<(), RedisError> {
    let rooms = registry.rooms();
    if rooms.is_empty() {
        return Ok(());
    }
    let pipeline = cluster.commands.pipeline();
    for room in &rooms {
        let _: () = pipeline
            .pexpire(presence_key(room.id()), millis(ROOM_TTL), None)
            .await?;
    }
    for result in pipeline.try_all::<Value>().await {
        result?;
    }
    Ok(())
}

async fn forget_dead_replicas(
    cluster: &Cluster,
    registry: &RoomRegistry,
) -> Result<(), RedisError> {
    for replica in registry.replicas_elsewhere() {
        let exists: u32 = cluster.commands.exists(replica_key(&replica)).await?;
        if exists == 0 {
            tracing::info!(%replica, "a replica stopped refreshing its presence: its people left");
            registry.forget_replica(&replica);
        }
    }
    Ok(())
}

/// Connection errors mark the link down (logged once); a reconnection wakes the heartbeat, which
/// resyncs.
async fn watch_connection(
    cluster: Arc<Cluster>,
    mut errors: tokio::sync::broadcast::Receiver<(RedisError, Option<fred::types::config::Server>)>,
    mut reconnects: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        tokio::select! {
            error = errors.recv() => match error {
                Ok((error, _)) => cluster.set_down(&error),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            reconnected = reconnects.recv() => match reconnected {
                Ok(_) | Err(RecvError::Lagged(_)) => cluster.nudge.notify_one(),
                Err(RecvError::Closed) => return,
            },
        }
    }
}
