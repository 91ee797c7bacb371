//! Where the Redis store's commands go: one server, or a Redis Cluster (each command, pipeline
//! and script to the node that owns its keys' slot).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use super::StoreError;

/// A reconnecting, multiplexed connection to one Redis server or to a Redis Cluster; cheap to
/// clone. Commands sent through it (`query_async(&mut connection)`) reach the right node.
#[derive(Clone)]
pub struct RedisConnection(Target);

#[derive(Clone)]
enum Target {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

/// How long connecting and answering may take before a call fails (and the listener, failing
/// closed, waits and tries again).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisConnection {
    /// A connection to the server at `url`, made on first use.
    pub(super) fn server(url: &str, ca: Option<Vec<u8>>) -> Result<Self, StoreError> {
        let client = match ca {
            Some(ca) => {
                let certificates = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca),
                };
                redis::Client::build_with_tls(url, certificates)
            }
            None => redis::Client::open(url),
        }
        .map_err(address)?;
        in_runtime()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(StoreError::unavailable)?;
        Ok(RedisConnection(Target::Server(connection)))
    }

    /// A connection to the cluster that the seed `nodes` belong to, made in the background.
    /// `rediss://` nodes are verified against the system's CAs (with OpenSSL, `SSL_CERT_FILE`
    /// names another PEM file of them).
    pub(super) fn cluster(nodes: &[&str]) -> Result<Self, StoreError> {
        if nodes.is_empty() {
            return Err(StoreError::Address {
                source: "no Redis Cluster nodes given".into(),
            });
        }
        // Bounded like the single server's: a call fails within about two response timeouts
        // (a MOVED redirection or one reconnection included), and the listener, failing closed,
        // waits and tries again.
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(RESPONSE_TIMEOUT * 2))
            .retries(2)
            .max_retry_wait(500)
            .build()
            .map_err(address)?;
        in_runtime()?;
        // The connection's own settings replace the client's timeouts: the same ones.
        let config = ClusterConfig::new()
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let connection = client.get_pending_async_connection_with_config(config);
        Ok(RedisConnection(Target::Cluster(connection)))
    }
}

fn address(error: redis::RedisError) -> StoreError {
    StoreError::Address {
        source: error.into(),
    }
}

/// The connection's tasks need a Tokio runtime (redis panics without one).
fn in_runtime() -> Result<(), StoreError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| {
            StoreError::unavailable(
                "a RedisStore is made inside a Tokio runtime (e.g. in #[tokio::main])",
            )
        })
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Target::Server(connection) => connection.req_packed_command(cmd),
            Target::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Target::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Target::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Target::Server(connection) => connection.get_db(),
            Target::Cluster(connection) => connection.get_db(),
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Target::Server(_) => "server",
            Target::Cluster(_) => "cluster",
        };
        f.debug_tuple("RedisConnection").field(&kind).finish()
    }
}
