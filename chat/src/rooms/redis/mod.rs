//! Several chat processes as one service, through Redis (`REDIS_URL`): the registry's Redis side.
//!
//! A pub/sub channel per room carries messages and presence changes, in one order for every
//! replica. Several URLs spread the rooms over several Redis ([`Shards`]), each working as one
//! Redis alone does. The design and the outage rules: chat/README.md, "Replicas over Redis".

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
/// A killed replica's people are announced as `left` within `REPLICA_TTL` + `HEARTBEAT` (+ one
/// round trip).
pub const REPLICA_TTL: Duration = Duration::from_secs(5);
const ROOM_TTL: Duration = Duration::from_secs(60);
const RECONNECT_DELAY_MS: u32 = 500;
/// A command that takes longer fails, and its message is delivered locally.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// A first join then goes on with what it knows; the next resync completes it.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3);
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pub/sub messages the client buffers for the dispatcher before it counts as lagging.
const MESSAGE_BUFFER: usize = 8192;

/// Random, new at every start, the same on every shard.
pub type ReplicaId = Arc<str>;

/// Data: what members say and presence changes, published in runs (one pipeline each).
pub(crate) enum Publish {
    Message {
        room_id: String,
        frame: Frame,
    },
    /// This replica now holds `tabs` sockets of `user` in the room.
    Tabs {
        room_id: String,
        user: String,
        tabs: usize,
    },
}

/// Control: steps about one room, taken by its shard.
pub(crate) enum Control {
    Load {
        room: RoomHandle,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        room_id: String,
    },
    RoomDeleted {
        room_id: String,
    },
}

/// What a shard's sending task takes, through one queue, so that a join, the messages after it
/// and the leave reach Redis in the order they happened.
enum Outgoing {
    Publish(Publish),
    Control(Control),
    Resync,
    Goodbye { done: oneshot::Sender<()> },
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

pub(crate) struct Cluster {
    pub(crate) me: ReplicaId,
    shards: Shards,
    /// In shard order: `links[shards.of(room)]` carries the room.
    links: Vec<Arc<Shard>>,
    up: Arc<Up>,
}

/// The tasks' half of [`Cluster::new`], started once the registry exists.
pub(crate) struct Receivers(Vec<shard::Receivers>);

/// One shard down is a replica degraded: the probe and the metrics report `all`.
struct Up {
    each: Mutex<Vec<bool>>,
    all: watch::Sender<bool>,
}

impl Up {
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

    pub(super) fn start(&self, receivers: Receivers, registry: WeakRegistry) {
        for (shard, receivers) in self.links.iter().zip(receivers.0) {
            shard.start(receivers, registry.clone());
        }
    }

    pub(crate) fn shard_of(&self, room_id: &str) -> usize {
        self.shards.of(room_id)
    }

    fn shard(&self, room_id: &str) -> &Shard {
        &self.links[self.shards.of(room_id)]
    }

    /// Never waits.
    pub(crate) fn publish(&self, item: Publish) {
        self.shard(item.room_id()).send(Outgoing::Publish(item));
    }

    /// After everything queued for the room's shard before it.
    pub(crate) fn control(&self, step: Control) {
        self.shard(step.room_id()).send(Outgoing::Control(step));
    }

    pub(crate) fn is_up(&self) -> bool {
        *self.up.all.borrow()
    }

    pub(crate) fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.all.subscribe()
    }

    /// Subscribes to `room` and loads who is in it elsewhere, before the first member here is
    /// welcomed.
    pub(super) async fn load(&self, room: &RoomHandle) {
        let (done, loaded) = oneshot::channel();
        self.control(Control::Load {
            room: room.clone(),
            done,
        });
        let _ = tokio::time::timeout(LOAD_TIMEOUT, loaded).await;
    }

    pub(crate) async fn leave(&self) {
        futures_util::future::join_all(self.links.iter().map(|shard| shard.leave())).await;
    }
}
