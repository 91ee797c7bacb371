//! The health endpoint, served over HTTP/1 while the application runs: `/metrics` (Prometheus'
//! text format), `/health/live` (every consumer is running) and `/health/ready` (and the groups
//! joined, the broker and the idempotency store answer, no partition stalled, no handler
//! running past the threshold). A probe answers 200 `ok`, or 503 with one line per problem.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::idempotency::IdempotencyStore;
use crate::runtime::metrics::Metrics;
use crate::runtime::stats::ListenerStats;
use crate::transport::kafka::Kafka;

/// How long a readiness probe waits for the broker and the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The health endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The address does not parse.
    #[error("the health endpoint's address `{address}` is not `host:port` (e.g. `0.0.0.0:8080`)")]
    Address {
        /// What was given.
        address: String,
    },
    /// The address is taken, or not this host's.
    #[error("the health endpoint cannot listen on {address} (is the port taken?): {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Parses `address` as the endpoint's `host:port`.
pub(crate) fn parse_address(address: &str) -> Result<SocketAddr, HealthError> {
    address.trim().parse().map_err(|_| HealthError::Address {
        address: address.to_owned(),
    })
}

/// What the probes look at.
pub(crate) struct Probes {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) listeners: Vec<(&'static str, Arc<ListenerStats>)>,
    /// Each Kafka group and whether it has been given its first assignment.
    pub(crate) groups: Vec<(&'static str, Arc<AtomicBool>)>,
    /// Each group's consumer task (Kafka or in process).
    pub(crate) tasks: Vec<(&'static str, AbortHandle)>,
    pub(crate) kafka: Option<Kafka>,
    pub(crate) store: Arc<dyn IdempotencyStore>,
    /// A handler attempt running longer than this makes the application not ready.
    pub(crate) hung_after: Duration,
    /// The application's stop: once it fires, the application is shutting down.
    pub(crate) stop: CancellationToken,
}

impl Probes {
    /// Why the application is not alive: a consumer that stopped while it should run.
    fn not_alive(&self) -> Vec<String> {
        if self.stop.is_cancelled() {
            return Vec::new();
        }
        self.tasks
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(group, _)| {
                format!(
                    "group `{group}`'s consumer stopped (a worker died or it failed; see the log)"
                )
            })
            .collect()
    }

    /// Why the application is not ready.
    async fn not_ready(&self) -> Vec<String> {
        let mut problems = self.not_alive();
        if self.stop.is_cancelled() {
            problems.push("shutting down".to_owned());
        }
        for (group, joined) in &self.groups {
            if !joined.load(Ordering::Relaxed) {
                problems.push(format!(
                    "group `{group}` has not been given its partitions yet"
                ));
            }
        }
        for (name, stats) in &self.listeners {
            let stalled = stats.stalled_now();
            if stalled > 0 {
                problems.push(format!(
                    "listener `{name}`: {stalled} partition(s) cannot progress (the idempotency store or the dead-letter topic keeps failing)"
                ));
            }
            if let Some((partition, running)) = stats.longest_attempt()
                && running > self.hung_after
            {
                problems.push(format!(
                    "listener `{name}`: a handler has been running for {}s on partition {partition}",
                    running.as_secs()
                ));
            }
        }
        if let Some(kafka) = &self.kafka
            && let Err(error) = kafka.reachable(PROBE_TIMEOUT).await
        {
            problems.push(format!(
                "the Kafka cluster at `{}` does not answer: {error}",
                kafka.bootstrap_servers()
            ));
        }
        let ping = tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await;
        match ping {
            Ok(Ok(())) => {}
            Ok(Err(error)) => problems.push(format!("the idempotency store fails: {error}")),
            Err(_) => problems.push("the idempotency store does not answer".to_owned()),
        }
        problems
    }

    async fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let problems = match path {
            "/metrics" => {
                let mut response = Response::new(Full::from(self.metrics.render()));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return response;
            }
            "/health/live" => self.not_alive(),
            "/health/ready" => self.not_ready().await,
            _ => {
                let mut response = Response::new(Full::from(
                    "not found: /metrics, /health/live and /health/ready are served\n",
                ));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return response;
            }
        };
        if problems.is_empty() {
            return Response::new(Full::from("ok\n"));
        }
        let mut response = Response::new(Full::from(problems.join("\n") + "\n"));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    }
}

/// Binds `address` now (a taken port is an error at start) and serves the probes until `until`
/// (after the shutdown, so that readiness says "shutting down" meanwhile).
pub(crate) fn serve(
    address: SocketAddr,
    probes: Probes,
    until: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HealthError> {
    let bind = |source| HealthError::Bind { address, source };
    let listener = std::net::TcpListener::bind(address).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    info!(
        address = %bound,
        "health endpoint: /metrics, /health/live, /health/ready"
    );
    let probes = Arc::new(probes);
    let server = tokio::spawn(async move {
        loop {
            let connection = tokio::select! {
                connection = listener.accept() => connection,
                () = until.cancelled() => return,
            };
            let Ok((stream, _)) = connection else {
                continue;
            };
            let probes = probes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let probes = probes.clone();
                    async move { Ok::<_, Infallible>(probes.answer(request.uri().path()).await) }
                });
                let served = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    debug!(%error, "health endpoint connection failed");
                }
            });
        }
    });
    Ok((bound, server))
}
