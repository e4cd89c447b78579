//! The process's threads run `SCHED_BATCH`: a thread woken on a busy CPU waits for its turn
//! instead of preempting the thread that runs there. The runtime's workers wake each other for
//! every task one queues for the other; on a shared CPU under the default policy the woken one
//! takes over at once, sends one frame and sleeps again: two context switches per member of a
//! fan-out. Set before the runtime starts, so its threads inherit it (chat/README.md,
//! "Scheduling").

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id, thread_schedule_policy,
};

const BATCH: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);

/// Switches the calling thread, and so every thread it starts after this, to `SCHED_BATCH`. Not
/// fatal: where the system refuses (it needs no privilege on Linux), the chat runs as it would.
pub fn batch() {
    // Niceness 0, the default; a static priority of 0, the only one SCHED_BATCH takes.
    let niceness = ThreadPriority::Os(Default::default());
    let outcome = set_thread_priority_and_policy(thread_native_id(), niceness, BATCH);
    if thread_schedule_policy().ok() != Some(BATCH) {
        tracing::warn!(
            ?outcome,
            "the chat's threads stay SCHED_OTHER: SCHED_BATCH was refused"
        );
    }
}
