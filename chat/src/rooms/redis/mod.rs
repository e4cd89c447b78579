//! Several chat processes as one service, through Redis (`REDIS_URL`): the registry's Redis side.
//!
//! Each room has a pub/sub channel that every replica with members in it subscribes to; messages
//! and presence changes are published there and every replica, the sender's included, delivers
//! them in Redis's order. Presence lives in a hash per room, liveness in a key per replica with a
//! TTL. Several URLs spread the rooms over several Redis ([`Shards`]); each [`Shard`] works as one
//! Redis alone does. What arrives goes to the registry as [`Inbound`](super::Inbound); rooms are
//! seen only as handles. The design and the outage rules: chat/README.md, "Replicas over Redis".

mod shard;
mod shards;
mod tasks;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::Error as RedisError;
use tokio::sync::{oneshot, watch};

use super::{RoomHandle, WeakRegistry};
use crate::config::RedisUrls;
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::sync::lock;
use shard::Shard;
pub use shards::Shards;

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

/// A replica's name in Redis: random, new at every start, the same on every shard.
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

/// Control: steps about one room, taken by its shard.
pub(crate) enum Control {
    /// Subscribe to a room opened here and load who is in it elsewhere.
    Load {
        room: RoomHandle,
        done: oneshot::Sender<()>,
    },
    /// The last member here left: stop listening (unless the room was opened again meanwhile).
    Unsubscribe { room_id: String },
    /// The room was deleted: every replica closes its members there.
    RoomDeleted { room_id: String },
}

/// What a shard's sending task takes, through one queue, so that a join, the messages after it
/// and the leave reach Redis in the order they happened.
enum Outgoing {
    Publish(Publish),
    Control(Control),
    /// After a reconnection: resubscribe, write this replica's state, read everybody else's.
    Resync,
    /// Shutting down: take this replica's people out of every room of the shard.
    Goodbye {
        done: oneshot::Sender<()>,
    },
}

impl Publish {
    fn room_id(&self) -> &str {
        match self {
            Self::Message { room_id, .. } | Self::Tabs { room_id, .. } => room_id,
        }
    }
}

impl Control {
    fn room_id(&self) -> &str {
        match self {
            Self::Load { room, .. } => room.id(),
            Self::Unsubscribe { room_id } | Self::RoomDeleted { room_id } => room_id,
        }
    }
}

/// The Redis side of a registry: one [`Shard`] per URL of `REDIS_URL`, each room on one of them.
pub(crate) struct Cluster {
    pub(crate) me: ReplicaId,
    shards: Shards,
    /// In shard order: `links[shards.of(room)]` carries the room.
    links: Vec<Arc<Shard>>,
    up: Arc<Up>,
}

/// The tasks' half of [`Cluster::new`]: started by [`Cluster::start`] once the registry exists.
pub(crate) struct Receivers(Vec<shard::Receivers>);

/// Whether each shard carries its rooms through Redis now, and whether all do (what the registry,
/// the health probe and the metrics report: one shard down is a replica degraded).
struct Up {
    each: Mutex<Vec<bool>>,
    all: watch::Sender<bool>,
}

impl Up {
    /// Sets `shard`'s state; returns what it was.
    fn set(&self, shard: usize, up: bool) -> bool {
        let mut each = lock(&self.each);
        let was = std::mem::replace(&mut each[shard], up);
        // Sent under the lock: two shards changing at once cannot leave a stale `all`.
        self.all.send_if_modified(|all| {
            let now = each.iter().all(|up| *up);
            std::mem::replace(all, now) != now
        });
        was
    }

    fn is_up(&self, shard: usize) -> bool {
        lock(&self.each)[shard]
    }
}

impl Cluster {
    /// Builds the Redis clients of every shard (nothing is connected yet).
    pub(crate) fn new(urls: &RedisUrls, metrics: Metrics) -> Result<(Self, Receivers), RedisError> {
        let me: ReplicaId = format!("{:016x}", rand::random::<u64>()).into();
        let shards = Shards::new(urls.urls().len());
        let up = Arc::new(Up {
            each: Mutex::new(vec![false; shards.count()]),
            all: watch::Sender::new(false),
        });
        let mut links = Vec::new();
        let mut receivers = Vec::new();
        for (index, url) in urls.urls().iter().enumerate() {
            let (shard, shard_receivers) =
                Shard::new(url, index, &me, up.clone(), metrics.clone())?;
            links.push(Arc::new(shard));
            receivers.push(shard_receivers);
        }
        let cluster = Self {
            me,
            shards,
            links,
            up,
        };
        Ok((cluster, Receivers(receivers)))
    }

    /// Connects every shard and starts its tasks.
    pub(crate) fn start(&self, receivers: Receivers, registry: WeakRegistry) {
        for (shard, receivers) in self.links.iter().zip(receivers.0) {
            shard.start(receivers, registry.clone());
        }
    }

    /// The shard that carries `room_id` (the registry asks when a shard wants its own rooms).
    pub(crate) fn shard_of(&self, room_id: &str) -> usize {
        self.shards.of(room_id)
    }

    fn shard(&self, room_id: &str) -> &Shard {
        &self.links[self.shards.of(room_id)]
    }

    /// Queues data for its room's shard. Never waits.
    pub(crate) fn publish(&self, item: Publish) {
        self.shard(item.room_id()).send(Outgoing::Publish(item));
    }

    /// Queues a control step for its room's shard, after everything queued there before it.
    pub(crate) fn control(&self, step: Control) {
        self.shard(step.room_id()).send(Outgoing::Control(step));
    }

    /// Whether events go through Redis now on every shard (false: degraded, the rooms of a shard
    /// that is down are local to this replica until it is back).
    pub(crate) fn is_up(&self) -> bool {
        *self.up.all.borrow()
    }

    /// Follows [`Cluster::is_up`].
    pub(crate) fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.all.subscribe()
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

    /// Takes this replica's people out of every room on every shard and closes the connections,
    /// all shards at once.
    pub(crate) async fn leave(&self) {
        futures_util::future::join_all(self.links.iter().map(|shard| shard.leave())).await;
    }
}
