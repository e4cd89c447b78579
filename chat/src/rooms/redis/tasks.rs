//! One shard's tasks: sending, receiving, the heartbeat and the connection watch. Redis down: what
//! cannot be published is delivered here, nothing is retried behind the members' backs, and a
//! resync after the reconnection puts Redis right again.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fred::prelude::{ClientLike, Error as RedisError, KeysInterface, PubsubInterface, Value};
use fred::types::{ClusterHash, CustomCommand};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::shard::Shard;
use super::wire::{self, DELETED_CHANNEL, Payload, WireOp};
use super::{Control, HEARTBEAT, Outgoing, Publish, REPLICA_TTL, ROOM_TTL};
use crate::rooms::everywhere::Remote;
use crate::rooms::{Inbound, RoomHandle, RoomRegistry, WeakRegistry};
use crate::sync::lock;

/// Items the sending task takes at once (one pipeline, one round trip).
const MAX_BATCH: usize = 512;

/// `EVAL`, sent as a plain command: fred's pipelines take no scripts otherwise.
fn eval_command() -> CustomCommand {
    CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false)
}

pub(super) async fn send_loop(
    shard: Arc<Shard>,
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
                Outgoing::Publish(data) => run.push(data),
                step => {
                    publish(&shard, &registry, &mut run).await;
                    control_step(&shard, &registry, step).await;
                }
            }
        }
        publish(&shard, &registry, &mut run).await;
    }
}

async fn publish(shard: &Shard, registry: &RoomRegistry, run: &mut Vec<Publish>) {
    if run.is_empty() {
        return;
    }
    if !shard.is_up() {
        for item in run.drain(..) {
            local_fallback(shard, registry, item);
        }
        return;
    }
    let pipeline = shard.commands.pipeline();
    for item in run.iter() {
        let queued: Result<(), RedisError> = match item {
            Publish::Message { room_id, frame } => {
                pipeline
                    .publish(wire::channel(room_id), wire::message_payload(frame))
                    .await
            }
            Publish::Tabs {
                room_id,
                user,
                tabs,
            } => {
                let op = WireOp::Tabs {
                    replica: shard.me.to_string(),
                    user: user.clone(),
                    tabs: *tabs,
                };
                let args = wire::presence_args(&shard.me, room_id, &op, ROOM_TTL);
                pipeline.custom(eval_command(), args).await
            }
        };
        if let Err(error) = queued {
            tracing::warn!(%error, "could not queue a Redis command");
        }
    }
    let mut results = pipeline.try_all::<Value>().await.into_iter();
    for item in run.drain(..) {
        match results.next() {
            Some(Ok(_)) => {
                if matches!(item, Publish::Message { .. }) {
                    shard.metrics.broker().published.increment(1);
                }
            }
            Some(Err(error)) => {
                shard.set_down(&error);
                local_fallback(shard, registry, item);
            }
            None => {
                shard.set_down(&"no answer from Redis");
                local_fallback(shard, registry, item);
            }
        }
    }
}

fn local_fallback(shard: &Shard, registry: &RoomRegistry, item: Publish) {
    registry.receive(match item {
        Publish::Message { room_id, frame } => Inbound::Frame { room_id, frame },
        Publish::Tabs {
            room_id,
            user,
            tabs,
        } => {
            shard.mark_dirty(&room_id);
            let fact = Remote::Tabs {
                replica: shard.me.clone(),
                user,
                tabs,
            };
            Inbound::Presence { room_id, fact }
        }
    });
}

/// One step of the queue other than data (data sent here alone is published alone).
async fn control_step(shard: &Shard, registry: &RoomRegistry, step: Outgoing) {
    match step {
        Outgoing::Publish(data) => publish(shard, registry, &mut vec![data]).await,
        Outgoing::Control(Control::Load { room, done }) => {
            if shard.is_up() {
                registry.hold(&room);
                let rooms = [room];
                if let Err(error) = load_rooms(shard, registry, &rooms).await {
                    shard.set_down(&error);
                    release(registry, &rooms);
                }
            }
            let _ = done.send(());
        }
        Outgoing::Control(Control::Unsubscribe { room_id }) => {
            if !registry.is_open(&room_id)
                && shard.is_up()
                && let Err(error) = shard.subscriber.unsubscribe(wire::channel(&room_id)).await
            {
                shard.set_down(&error);
            }
        }
        Outgoing::Resync => {
            shard.resync_queued.store(false, Ordering::Relaxed);
            if shard.connected() {
                resync(shard, registry).await;
            }
        }
        Outgoing::Goodbye { done } => {
            if shard.is_up() {
                goodbye(shard, registry).await;
            }
            let _ = done.send(());
        }
        Outgoing::Control(Control::RoomDeleted { room_id }) => {
            // Already done on this replica; without Redis the others learn it at their members'
            // next reconnect (the ticket request answers 404).
            if shard.is_up()
                && let Err(error) = shard
                    .commands
                    .publish::<Value, _, _>(DELETED_CHANNEL, room_id)
                    .await
            {
                tracing::warn!(%error, "could not pass a room deletion on to the other replicas");
                shard.set_down(&error);
            }
        }
    }
}

/// The rooms hold what their channels bring until their snapshot is in.
async fn load_rooms(
    shard: &Shard,
    registry: &RoomRegistry,
    rooms: &[RoomHandle],
) -> Result<(), RedisError> {
    if rooms.is_empty() {
        return Ok(());
    }
    let channels: Vec<String> = rooms.iter().map(|room| wire::channel(room.id())).collect();
    shard.subscriber.subscribe(channels).await?;
    let snapshots = shard.snapshots(rooms).await?;
    for (room, elsewhere) in rooms.iter().zip(snapshots) {
        registry.receive(Inbound::Snapshot {
            room: room.clone(),
            elsewhere: Some(elsewhere),
        });
    }
    Ok(())
}

/// Lets held rooms apply what they kept, without a snapshot (Redis failed meanwhile).
fn release(registry: &RoomRegistry, rooms: &[RoomHandle]) {
    for room in rooms {
        registry.receive(Inbound::Snapshot {
            room: room.clone(),
            elsewhere: None,
        });
    }
}

/// After a reconnection, or when this replica's liveness key was gone: resubscribe, write this
/// replica's whole state (and nobody in the rooms it left meanwhile), read everybody else's.
async fn resync(shard: &Shard, registry: &RoomRegistry) {
    let held = registry.hold_all(shard.index);
    let rooms: Vec<RoomHandle> = held.iter().map(|(room, _)| room.clone()).collect();
    let result = async {
        shard.subscriber.subscribe(DELETED_CHANNEL).await?;
        shard.refresh_liveness().await?;
        let dirty: Vec<String> = lock(&shard.dirty).drain().collect();
        let mut writes: Vec<(String, Vec<(String, usize)>)> = held
            .into_iter()
            .map(|(room, people)| (room.id().to_owned(), people))
            .collect();
        for room_id in dirty {
            if !registry.is_open(&room_id) {
                writes.push((room_id, Vec::new()));
            }
        }
        write_states(shard, writes).await?;
        load_rooms(shard, registry, &rooms).await
    }
    .await;
    match result {
        Ok(()) => shard.set_up(),
        Err(error) => {
            shard.set_down(&error);
            release(registry, &rooms);
        }
    }
}

async fn write_states(
    shard: &Shard,
    writes: Vec<(String, Vec<(String, usize)>)>,
) -> Result<(), RedisError> {
    if writes.is_empty() {
        return Ok(());
    }
    let pipeline = shard.commands.pipeline();
    for (room_id, people) in writes {
        let op = WireOp::All {
            replica: shard.me.to_string(),
            people,
        };
        let args = wire::presence_args(&shard.me, &room_id, &op, ROOM_TTL);
        let _: () = pipeline.custom(eval_command(), args).await?;
    }
    for result in pipeline.try_all::<Value>().await {
        result?;
    }
    Ok(())
}

async fn goodbye(shard: &Shard, registry: &RoomRegistry) {
    let mut rooms = registry.room_ids(shard.index);
    rooms.extend(lock(&shard.dirty).drain());
    rooms.sort();
    rooms.dedup();
    let writes = rooms.into_iter().map(|id| (id, Vec::new())).collect();
    if let Err(error) = write_states(shard, writes).await {
        tracing::warn!(%error, "could not take this replica's people out of Redis");
    }
    let _: Result<Value, _> = shard.commands.del(wire::replica_key(&shard.me)).await;
}

pub(super) async fn receive_loop(
    shard: Arc<Shard>,
    registry: WeakRegistry,
    mut messages: broadcast::Receiver<fred::types::Message>,
) {
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "fell behind the Redis channels: events were lost, presence is reloaded"
                );
                shard.request_resync();
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        if let Some(inbound) = inbound(&message) {
            if let Inbound::Frame { frame, .. } = &inbound {
                let broker = shard.metrics.broker();
                broker.received.increment(1);
                if let Some(lag) = lag_of(frame) {
                    broker.lag.record(lag);
                }
            }
            registry.receive(inbound);
        }
        // Let the writers drain their queues between two events: a burst from Redis would
        // otherwise fill every member's queue before any writer runs (and close them with 4008).
        tokio::task::yield_now().await;
    }
}

/// By the two replicas' clocks, from the event's `at` (its last field).
fn lag_of(frame: &crate::protocol::Frame) -> Option<f64> {
    let text = frame.as_str();
    let start = text.rfind("\"at\":\"")? + "\"at\":\"".len();
    let end = start + text[start..].find('"')?;
    let at = time::OffsetDateTime::parse(
        &text[start..end],
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some(
        (time::OffsetDateTime::now_utc() - at)
            .as_seconds_f64()
            .max(0.0),
    )
}

fn inbound(message: &fred::types::Message) -> Option<Inbound> {
    if message.channel == DELETED_CHANNEL {
        return message.value.as_string().map(Inbound::RoomDeleted);
    }
    let room_id = wire::room_of_channel(&message.channel)?.to_owned();
    let payload = message
        .value
        .as_bytes()
        .map(|bytes| bytes.to_vec().into())?;
    match wire::parse_payload(&payload) {
        Ok(Payload::Message(frame)) => Some(Inbound::Frame { room_id, frame }),
        Ok(Payload::Presence(WireOp::Tabs {
            replica,
            user,
            tabs,
        })) => Some(Inbound::Presence {
            room_id,
            fact: Remote::Tabs {
                replica: replica.into(),
                user,
                tabs,
            },
        }),
        Ok(Payload::Presence(WireOp::All { replica, people })) => Some(Inbound::Presence {
            room_id,
            fact: Remote::All {
                replica: replica.into(),
                people: people.into_iter().collect(),
            },
        }),
        Err(error) => {
            tracing::warn!(%error);
            None
        }
    }
}

/// Also runs at once after a reconnection, to resync.
pub(super) async fn heartbeat_loop(shard: Arc<Shard>, registry: WeakRegistry) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Every presence write renews a room's hash: a few refreshes per TTL are plenty.
    let rooms_every = (ROOM_TTL.as_secs() / HEARTBEAT.as_secs() / 4).max(1);
    let mut beats: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shard.nudge.notified() => {}
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        if !shard.connected() {
            shard.set_down(&"connection lost");
            continue;
        }
        match shard.refresh_liveness().await {
            Err(error) => {
                shard.set_down(&error);
                continue;
            }
            Ok(previous) if previous.is_none() || !shard.is_up() => {
                shard.request_resync();
                continue;
            }
            Ok(_) => {}
        }
        beats += 1;
        if beats.is_multiple_of(rooms_every)
            && let Err(error) = shard.keep_rooms_alive(registry.room_ids(shard.index)).await
        {
            shard.set_down(&error);
            continue;
        }
        if beats.is_multiple_of(rooms_every)
            && let Ok(alive) = shard.count_alive().await
        {
            shard.metrics.broker().replicas_alive.set(alive as f64);
        }
        let settled =
            lock(&shard.up_since).is_some_and(|since| since.elapsed() >= REPLICA_TTL + HEARTBEAT);
        if settled {
            let replicas: Vec<_> = registry
                .replicas_elsewhere(shard.index)
                .into_iter()
                .collect();
            match shard.dead_among(&replicas).await {
                Ok(dead) => {
                    for replica in dead {
                        registry.receive(Inbound::ReplicaGone {
                            replica,
                            shard: shard.index,
                        });
                    }
                }
                Err(error) => shard.set_down(&error),
            }
        }
    }
}

pub(super) async fn watch_connection(
    shard: Arc<Shard>,
    mut errors: broadcast::Receiver<(RedisError, Option<fred::types::config::Server>)>,
    mut reconnects: broadcast::Receiver<fred::types::config::Server>,
) {
    loop {
        tokio::select! {
            error = errors.recv() => match error {
                Ok((error, _)) => shard.set_down(&error),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            reconnected = reconnects.recv() => match reconnected {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    shard.metrics.broker().reconnects.increment(1);
                    shard.nudge.notify_one();
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
