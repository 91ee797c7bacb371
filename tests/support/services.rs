//! Reaching Redis and real brokers: from the environment, skipped (and saying so) when absent,
//! failing when `ERP_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The Redis under test, from `REDIS_URL`; `None` (after saying why) when it is not set and
/// services are not required.
pub fn redis_url(test: &str) -> Option<String> {
    required_service("REDIS_URL", test)
}

/// The Redis Cluster under test, its seed nodes from `ERP_REDIS_CLUSTER_NODES`
/// (`scripts/redis-cluster nodes`); `None` as for [`redis_url`].
pub fn redis_cluster_nodes(test: &str) -> Option<Vec<String>> {
    let nodes = required_service("ERP_REDIS_CLUSTER_NODES", test)?;
    Some(nodes.split(',').map(str::to_owned).collect())
}

/// The external broker under test, from `KAFKA_BROKERS`; `None` as for [`redis_url`].
pub fn external_brokers(test: &str) -> Option<String> {
    required_service("KAFKA_BROKERS", test)
}

/// The value of `variable`; `None` (after saying why) when it is unset and services are not
/// required (`ERP_REQUIRE_SERVICES=1`), a panic when they are.
pub fn required_service(variable: &str, test: &str) -> Option<String> {
    match std::env::var(variable).ok().filter(|v| !v.is_empty()) {
        Some(value) => Some(value),
        None if std::env::var("ERP_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{test}: {variable} is not set, and ERP_REQUIRE_SERVICES=1 requires it")
        }
        None => {
            eprintln!("SKIPPED {test}: {variable} is not set (set it, or run .ci/run)");
            None
        }
    }
}

/// The external broker under test (`KAFKA_BROKERS`), with the catalog's topics provisioned, and
/// this test's turn on it: its topics and consumer groups are shared, so tests take turns.
/// `None` (after saying why) when it is not set and services are not required.
pub async fn external_kafka(
    test: &str,
) -> Option<(erp_events::Kafka, tokio::sync::MutexGuard<'static, ()>)> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let brokers = external_brokers(test)?;
    let turn = TURN.lock().await;
    let catalog = erp_events::catalog!();
    let kafka = erp_events::Kafka::connect(&erp_events::Brokers::External(brokers), catalog)
        .expect("a real broker needs no start-up");
    kafka
        .provision(catalog, 1)
        .await
        .expect("provision the catalog's topics");
    Some((kafka, turn))
}

/// The external broker (`KAFKA_BROKERS`, provisioned, with this test's turn) when it is set,
/// else the embedded one.
pub async fn external_or_embedded_kafka() -> (
    erp_events::Kafka,
    Option<tokio::sync::MutexGuard<'static, ()>>,
) {
    match std::env::var("KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => {
            let (kafka, turn) = external_kafka("external_or_embedded_kafka")
                .await
                .expect("KAFKA_BROKERS is set");
            (kafka, Some(turn))
        }
        _ => (super::kafka(), None),
    }
}

/// A redis-server process of the test's own, on a free loopback port, that the test can stop
/// and start again (to simulate an outage). Needs `redis-server` on PATH.
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts a server without persistence and waits until it accepts connections.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, |_| Vec::new())
    }

    /// [`RedisServer::start`] with more of redis-server's arguments (`--requirepass`...), given
    /// the server's port.
    pub fn start_with(test: &str, args: impl FnOnce(u16) -> Vec<String>) -> Option<Self> {
        redis_url(test)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        let mut server = RedisServer {
            port,
            args: args(port),
            process: None,
        };
        server.restart();
        Some(server)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        self.url_as("")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL with `credentials` (`user:password@`, `:password@`).
    pub fn url_as(&self, credentials: &str) -> String {
        format!("redis://{credentials}127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: it has no persistence).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again on the same port, returning once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let mut process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (install it: apt-get install redis-server)");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.any(|line| {
            line.map(|l| l.contains("Ready to accept connections"))
                .unwrap_or(false)
        });
        assert!(ready, "redis-server on port {} did not start", self.port);
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.process = Some(process);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
