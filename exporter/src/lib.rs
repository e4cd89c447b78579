//! The Prometheus exporter both services share (docs/monitoring.md).
//!
//! Each service builds one [`Exporter`] from a `PrometheusBuilder` with its own histogram
//! buckets and registers its handles with [`Exporter::recorder`] — a recorder of its own rather
//! than the process-wide one, so tests run many services in one process. The process's figures
//! (`metrics-process`) and the Tokio runtime's (`tokio-metrics`) are sampled when `/metrics` is
//! read, under the same names in both services, so one dashboard query covers both.

use std::sync::{Mutex, PoisonError};

use metrics::{Counter, Gauge, describe_counter, describe_gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// A builder with the project's naming (units and `_total` as Prometheus recommends).
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new().with_recommended_naming(true)
}

/// The recorder behind a service's handles, with the samplers that run when `/metrics` is read.
pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    runtime: Mutex<Runtime>,
}

impl Exporter {
    /// Builds the recorder from `builder` and describes the process and runtime figures. Must be
    /// called within a Tokio runtime: the runtime's figures are read from it.
    pub fn new(builder: PrometheusBuilder) -> Self {
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let process = metrics_process::Collector::new("webchat_");
        let runtime = metrics::with_local_recorder(&recorder, || {
            process.describe();
            Runtime::register(&tokio::runtime::Handle::current())
        });
        Self {
            recorder,
            handle,
            process,
            runtime: Mutex::new(runtime),
        }
    }

    /// The recorder to register the service's own handles with.
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.recorder
    }

    /// Everything in Prometheus's text format, after sampling the process and the runtime.
    pub fn render(&self) -> String {
        metrics::with_local_recorder(&self.recorder, || self.process.collect());
        self.runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample();
        self.handle.render()
    }

    /// Drains the histograms' buffers (run now and then between scrapes).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The Tokio runtime's figures, from `tokio-metrics`; each sample covers the time since the last.
struct Runtime {
    intervals: tokio_metrics::RuntimeIntervals,
    workers: Gauge,
    alive_tasks: Gauge,
    global_queue_depth: Gauge,
    busy_ratio: Gauge,
    parks: Counter,
}

impl Runtime {
    fn register(runtime: &tokio::runtime::Handle) -> Self {
        describe_gauge!("webchat_runtime_workers", "Tokio worker threads.");
        describe_gauge!("webchat_runtime_alive_tasks", "Tokio tasks alive.");
        describe_gauge!(
            "webchat_runtime_global_queue_depth",
            "Tasks waiting in Tokio's global queue."
        );
        describe_gauge!(
            "webchat_runtime_busy_ratio",
            "Share of the workers' time spent running tasks since the previous scrape (0 to 1)."
        );
        describe_counter!(
            "webchat_runtime_worker_parks_total",
            "Times a Tokio worker had nothing to do and parked."
        );
        let mut intervals = tokio_metrics::RuntimeMonitor::new(runtime).intervals();
        // The first interval runs from the runtime's start: begin counting from now.
        let _ = intervals.next();
        Self {
            intervals,
            workers: metrics::gauge!("webchat_runtime_workers"),
            alive_tasks: metrics::gauge!("webchat_runtime_alive_tasks"),
            global_queue_depth: metrics::gauge!("webchat_runtime_global_queue_depth"),
            busy_ratio: metrics::gauge!("webchat_runtime_busy_ratio"),
            parks: metrics::counter!("webchat_runtime_worker_parks_total"),
        }
    }

    fn sample(&mut self) {
        let Some(interval) = self.intervals.next() else {
            return;
        };
        self.workers.set(interval.workers_count as f64);
        self.alive_tasks.set(interval.live_tasks_count as f64);
        self.global_queue_depth
            .set(interval.global_queue_depth as f64);
        let capacity = interval.elapsed.as_secs_f64() * interval.workers_count as f64;
        if capacity > 0.0 {
            self.busy_ratio
                .set((interval.total_busy_duration.as_secs_f64() / capacity).min(1.0));
        }
        self.parks.increment(interval.total_park_count);
    }
}
