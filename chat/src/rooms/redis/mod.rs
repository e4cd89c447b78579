//! Several chat processes as one service, through Redis (`REDIS_URL`): the registry's Redis side.
//!
//! Each room has a pub/sub channel that every replica with members in it subscribes to; messages
//! and presence changes are published there and every replica, the sender's included, delivers
//! them in Redis's order. Presence lives in a hash per room, liveness in a key per replica with a
//! TTL. What arrives goes to the registry as [`Inbound`]; rooms are seen only as handles. The
//! design, the outage rules and the limits: chat/README.md, "Replicas over Redis".

mod tasks;
mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfig, Error as RedisError, EventInterface,
    Expiration, HashesInterface, KeysInterface, ReconnectPolicy, Value,
};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{RoomHandle, Snapshot, WeakRegistry};
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::sync::lock;
use wire::{parse_presence_field, presence_key, replica_key};

/// How often a replica refreshes its liveness key and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a replica's liveness key outlives its last refresh. A killed replica's people are
/// announced as `left` within `REPLICA_TTL` + `HEARTBEAT` (+ one round trip).
pub const REPLICA_TTL: Duration = Duration::from_secs(5);
/// A room's presence hash outlives the last replica that refreshed it by this much.
const ROOM_TTL: Duration = Duration::from_secs(60);
/// Pause between two reconnection attempts (no limit on attempts).
const RECONNECT_DELAY_MS: u32 = 500;
/// A command that takes longer fails, and its message is delivered locally.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a first join waits for its room to be loaded before going on with what it knows.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a shutting-down replica waits for its goodbye to be written.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pub/sub messages the client buffers for the dispatcher before it counts as lagging.
const MESSAGE_BUFFER: usize = 8192;

/// A replica's name in Redis: random, new at every start.
pub type ReplicaId = Arc<str>;

/// Data: what members say and presence changes, published in runs (one pipeline each).
pub(crate) enum Publish {
    /// A serialized `message` event for everyone in the room.
    Message { room_id: String, frame: Frame },
    /// This replica now holds `tabs` sockets of `user` in the room.
    Tabs {
        room_id: String,
        user: String,
        tabs: usize,
    },
}

/// Control: steps that change what this replica listens to or holds in Redis.
pub(crate) enum Control {
    /// Subscribe to a room opened here and load who is in it elsewhere.
    Load {
        room: RoomHandle,
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

/// Both kinds through one queue, so a join, the messages after it and the leave reach Redis in
/// the order they happened.
enum Outgoing {
    Publish(Publish),
    Control(Control),
}

/// The Redis side of a registry: two connections (commands, and subscriptions) and the state of
/// the link.
pub(crate) struct Cluster {
    pub(crate) me: ReplicaId,
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
    /// Published, received, lag, errors, reconnections, replicas alive.
    metrics: Metrics,
}

/// The tasks' half of [`Cluster::new`]: started by [`Cluster::start`] once the registry exists.
pub(crate) struct Receivers {
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
}

impl Cluster {
    /// Builds the two Redis clients for `url` (nothing is connected yet).
    pub(crate) fn new(url: &str, metrics: Metrics) -> Result<(Self, Receivers), RedisError> {
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
            metrics,
        };
        let receivers = Receivers {
            outgoing: outgoing_rx,
        };
        Ok((cluster, receivers))
    }

    /// Connects and starts the tasks: sending, receiving, heartbeat, connection events.
    pub(crate) fn start(self: &Arc<Self>, receivers: Receivers, registry: WeakRegistry) {
        // Listening before connecting: nothing the channel brings is missed.
        let messages = self.subscriber.message_rx();
        let events = [
            (self.commands.error_rx(), self.commands.reconnect_rx()),
            (self.subscriber.error_rx(), self.subscriber.reconnect_rx()),
        ];
        drop(self.commands.connect());
        drop(self.subscriber.connect());
        tokio::spawn(tasks::send_loop(
            self.clone(),
            registry.clone(),
            receivers.outgoing,
        ));
        tokio::spawn(tasks::receive_loop(
            self.clone(),
            registry.clone(),
            messages,
        ));
        tokio::spawn(tasks::heartbeat_loop(self.clone(), registry));
        for (errors, reconnects) in events {
            tokio::spawn(tasks::watch_connection(self.clone(), errors, reconnects));
        }
    }

    /// Queues data for the sending task. Never waits.
    pub(crate) fn publish(&self, item: Publish) {
        // The task lives as long as the registry; a send after it ended has nobody to reach.
        let _ = self.outgoing.send(Outgoing::Publish(item));
    }

    /// Queues a control step for the sending task, after everything queued before it.
    pub(crate) fn control(&self, step: Control) {
        let _ = self.outgoing.send(Outgoing::Control(step));
    }

    /// Whether events go through Redis now (false: degraded, rooms are local to this replica).
    pub(crate) fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Follows [`Cluster::is_up`].
    pub(crate) fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Subscribes to `room` and loads who is in it elsewhere, before the first member here is
    /// welcomed. Gives up after [`LOAD_TIMEOUT`] (the room then starts with what this replica
    /// knows, and the next resync completes it).
    pub(crate) async fn load(&self, room: &RoomHandle) {
        let (done, loaded) = oneshot::channel();
        self.control(Control::Load {
            room: room.clone(),
            done,
        });
        let _ = tokio::time::timeout(LOAD_TIMEOUT, loaded).await;
    }

    /// Takes this replica's people out of every room on Redis and closes the connections.
    pub(crate) async fn leave(&self) {
        let (done, written) = oneshot::channel();
        self.control(Control::Goodbye { done });
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
                Some(Expiration::PX(wire::millis(REPLICA_TTL))),
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
        self.metrics.broker().errors.increment(1);
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
            self.control(Control::Resync);
        }
    }

    fn mark_dirty(&self, room_id: &str) {
        lock(&self.dirty).insert(room_id.to_owned());
    }

    /// Who is in each of `rooms` on the replicas that are alive, this one left out: every room's
    /// hash in one round trip, then every replica's liveness key in one more.
    async fn snapshots(&self, rooms: &[RoomHandle]) -> Result<Vec<Snapshot>, RedisError> {
        let pipeline = self.commands.pipeline();
        for room in rooms {
            let _: () = pipeline.hgetall(presence_key(room.id())).await?;
        }
        let mut snapshots: Vec<Snapshot> = Vec::with_capacity(rooms.len());
        let mut replicas: Vec<ReplicaId> = Vec::new();
        for hash in pipeline.try_all::<Value>().await {
            let fields: HashMap<String, String> = hash?.convert()?;
            let mut by_replica: Snapshot = HashMap::new();
            for (field, tabs) in &fields {
                let Some((replica, user, tabs)) = parse_presence_field(field, tabs) else {
                    continue;
                };
                if replica != &*self.me && tabs > 0 {
                    by_replica
                        .entry(replica.into())
                        .or_default()
                        .insert(user.to_owned(), tabs);
                }
            }
            replicas.extend(by_replica.keys().cloned());
            snapshots.push(by_replica);
        }
        replicas.sort();
        replicas.dedup();
        let dead = self.dead_among(&replicas).await?;
        for snapshot in &mut snapshots {
            snapshot.retain(|replica, _| !dead.contains(replica));
        }
        Ok(snapshots)
    }

    /// Which of `replicas` have no liveness key any more, in one round trip.
    async fn dead_among(&self, replicas: &[ReplicaId]) -> Result<HashSet<ReplicaId>, RedisError> {
        if replicas.is_empty() {
            return Ok(HashSet::new());
        }
        let pipeline = self.commands.pipeline();
        for replica in replicas {
            let _: () = pipeline.exists(replica_key(replica)).await?;
        }
        let mut dead = HashSet::new();
        for (replica, exists) in replicas.iter().zip(pipeline.try_all::<Value>().await) {
            if exists?.convert::<u32>()? == 0 {
                dead.insert(replica.clone());
            }
        }
        Ok(dead)
    }

    /// How many replicas' liveness keys exist, this one's included (one `KEYS` over a keyspace
    /// of room hashes and liveness keys only).
    async fn count_alive(&self) -> Result<usize, RedisError> {
        let keys: Vec<String> = self
            .commands
            .custom(
                fred::types::CustomCommand::new_static(
                    "KEYS",
                    fred::types::ClusterHash::Random,
                    false,
                ),
                vec![replica_key("*")],
            )
            .await?;
        Ok(keys.len())
    }

    /// Keeps the hashes of the rooms open here alive for another [`ROOM_TTL`].
    async fn keep_rooms_alive(&self, room_ids: Vec<String>) -> Result<(), RedisError> {
        if room_ids.is_empty() {
            return Ok(());
        }
        let pipeline = self.commands.pipeline();
        for room_id in &room_ids {
            let _: () = pipeline
                .pexpire(presence_key(room_id), wire::millis(ROOM_TTL), None)
                .await?;
        }
        for result in pipeline.try_all::<Value>().await {
            result?;
        }
        Ok(())
    }
}
