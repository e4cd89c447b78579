//! One Redis of `REDIS_URL` and the rooms that live on it: two connections (commands, and
//! subscriptions) and the state of the link. Each shard fails, reconnects and resyncs on its own:
//! a Redis down leaves the others' rooms shared.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfig, Error as RedisError, EventInterface,
    Expiration, HashesInterface, KeysInterface, ReconnectPolicy, Value,
};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::wire::{self, parse_presence_field, presence_key, replica_key};
use super::{
    COMMAND_TIMEOUT, GOODBYE_TIMEOUT, MESSAGE_BUFFER, Outgoing, RECONNECT_DELAY_MS, REPLICA_TTL,
    ROOM_TTL, ReplicaId, Up, tasks,
};
use crate::metrics::Metrics;
use crate::rooms::{RoomHandle, Snapshot, WeakRegistry};
use crate::sync::lock;

pub(super) struct Shard {
    /// From 0, in the logs as `shard`.
    pub(super) index: usize,
    /// `host:port`, never the password.
    server: String,
    pub(super) me: ReplicaId,
    pub(super) commands: Client,
    pub(super) subscriber: SubscriberClient,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    up: Arc<Up>,
    pub(super) nudge: Notify,
    pub(super) resync_queued: AtomicBool,
    outage_logged: AtomicBool,
    /// When the link last came up: other replicas are judged dead only a TTL after it.
    pub(super) up_since: Mutex<Option<Instant>>,
    pub(super) dirty: Mutex<HashSet<String>>,
    pub(super) metrics: Metrics,
}

pub(super) struct Receivers {
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
}

impl Shard {
    pub(super) fn new(
        url: &str,
        index: usize,
        me: &ReplicaId,
        up: Arc<Up>,
        metrics: Metrics,
    ) -> Result<(Self, Receivers), RedisError> {
        let mut config = RedisConfig::from_url(url)?;
        let server = config
            .server
            .hosts()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
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
        let shard = Self {
            index,
            server,
            me: me.clone(),
            commands,
            subscriber,
            outgoing,
            up,
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
        Ok((shard, receivers))
    }

    pub(super) fn start(self: &Arc<Self>, receivers: Receivers, registry: WeakRegistry) {
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

    /// Never waits.
    pub(super) fn send(&self, item: Outgoing) {
        // The task lives as long as the registry; a send after it ended has nobody to reach.
        let _ = self.outgoing.send(item);
    }

    pub(super) fn is_up(&self) -> bool {
        self.up.is_up(self.index)
    }

    pub(super) async fn leave(&self) {
        let (done, written) = oneshot::channel();
        self.send(Outgoing::Goodbye { done });
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, written).await;
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let _ = self.subscriber.quit().await;
            let _ = self.commands.quit().await;
        })
        .await;
    }

    /// `None`: the key had expired, or Redis lost it.
    pub(super) async fn refresh_liveness(&self) -> Result<Option<String>, RedisError> {
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

    pub(super) fn connected(&self) -> bool {
        self.commands.is_connected() && self.subscriber.is_connected()
    }

    /// Logged once per outage (a Redis that is not there at start is the server's to report).
    pub(super) fn set_down(&self, reason: &dyn Display) {
        self.metrics.broker().errors.increment(1);
        let was_up = self.up.set(self.index, false);
        if was_up && !self.outage_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                shard = self.index,
                redis = %self.server,
                %reason,
                "Redis unreachable: degraded, rooms are local to this replica until it is back"
            );
        }
    }

    pub(super) fn set_up(&self) {
        *lock(&self.up_since) = Some(Instant::now());
        let was_up = self.up.set(self.index, true);
        let (shard, redis) = (self.index, &self.server);
        if self.outage_logged.swap(false, Ordering::Relaxed) {
            tracing::info!(
                replica = %self.me,
                shard,
                %redis,
                "Redis reachable again: rooms shared again"
            );
        } else if !was_up {
            tracing::info!(
                replica = %self.me,
                shard,
                %redis,
                "connected to Redis: rooms shared with the other replicas"
            );
        }
    }

    pub(super) fn request_resync(&self) {
        if !self.resync_queued.swap(true, Ordering::Relaxed) {
            self.send(Outgoing::Resync);
        }
    }

    pub(super) fn mark_dirty(&self, room_id: &str) {
        lock(&self.dirty).insert(room_id.to_owned());
    }

    /// Every room's hash in one round trip, then every replica's liveness key in one more.
    pub(super) async fn snapshots(
        &self,
        rooms: &[RoomHandle],
    ) -> Result<Vec<Snapshot>, RedisError> {
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

    pub(super) async fn dead_among(
        &self,
        replicas: &[ReplicaId],
    ) -> Result<HashSet<ReplicaId>, RedisError> {
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

    /// One `KEYS` is fine: the keyspace holds only room hashes and liveness keys.
    pub(super) async fn count_alive(&self) -> Result<usize, RedisError> {
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

    pub(super) async fn keep_rooms_alive(&self, room_ids: Vec<String>) -> Result<(), RedisError> {
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
