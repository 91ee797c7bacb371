//! An Apache Kafka broker of a test's or a benchmark's own, run by `scripts/kafka` in a folder
//! under `target/` on free loopback ports, that its owner can stop and restart (an outage) and
//! that is stopped when dropped. Needs Java and Maven (the script fetches the broker once).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private Apache Kafka broker.
pub struct ApacheKafka {
    home: PathBuf,
    port: u16,
    /// The controller's, the SASL_SSL listener's and the mutual-TLS listener's.
    other_ports: [u16; 3],
}

impl ApacheKafka {
    /// Formats a fresh broker in `target/<folder>` and starts it.
    pub fn start(folder: &str) -> Self {
        let [port, other_ports @ ..] = free_ports();
        let broker = ApacheKafka {
            home: workspace().join("target").join(folder),
            port,
            other_ports,
        };
        broker.run("start");
        broker
    }

    /// The broker's `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker cleanly; its log dir stays for [`ApacheKafka::restart`].
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts the stopped broker again on its log dir and ports.
    pub fn restart(&self) {
        self.run("restart");
    }

    fn run(&self, command: &str) {
        let status = self.script(command).status().expect("run scripts/kafka");
        assert!(status.success(), "scripts/kafka {command} failed");
    }

    fn script(&self, command: &str) -> Command {
        let mut script = Command::new(workspace().join("scripts/kafka"));
        script
            .arg(command)
            .env("KAFKA_HOME", &self.home)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.other_ports[0].to_string())
            .env("KAFKA_SECURE_PORT", self.other_ports[1].to_string())
            .env("KAFKA_MTLS_PORT", self.other_ports[2].to_string());
        script
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        // Never panics: the broker may be stopped already.
        let _ = self.script("stop").status();
    }
}

/// Four distinct free loopback ports: each listener stays bound until all are picked (one
/// closed before the next bind may be handed out again: CI once gave two listeners one port).
fn free_ports() -> [u16; 4] {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let listeners = [bind(), bind(), bind(), bind()];
    listeners.map(|listener| listener.local_addr().expect("a bound port").port())
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
