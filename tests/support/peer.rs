//! The Spring peer (`interop/`, built by `scripts/interop build`): the seed's Kotlin
//! inventory-service as a process the interop tests drive. It reports what it did as JSON lines
//! on stdout (`{"kind": "sent" | "assigned" | "received" | "failed" | "dead-letter", ...}`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tokio::sync::mpsc;

use super::PATIENCE;
use super::services::required_service;

/// The peer's jar and the broker it talks to.
pub struct SpringPeer {
    jar: PathBuf,
    brokers: String,
}

impl SpringPeer {
    /// The peer built at `ERP_SPRING_PEER`, talking to `brokers`; `None` (after saying why)
    /// when it is not set and services are not required.
    pub fn find(test: &str, brokers: &str) -> Option<Self> {
        let jar = PathBuf::from(required_service("ERP_SPRING_PEER", test)?);
        assert!(
            jar.is_file(),
            "ERP_SPRING_PEER: no jar at {} (build it: scripts/interop build)",
            jar.display()
        );
        Some(SpringPeer {
            jar,
            brokers: brokers.to_owned(),
        })
    }

    fn command(&self, properties: &[(&str, &str)]) -> Command {
        let mut command = Command::new("java");
        command
            .arg("-jar")
            .arg(&self.jar)
            .args(
                properties
                    .iter()
                    .map(|(key, value)| format!("--{key}={value}")),
            )
            .env("KAFKA_BROKERS", &self.brokers)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    /// Publishes one envelope per request (`{"payload": {...}, "timestamp"?, "userId"?}`)
    /// through the seed's producer and returns what the broker acknowledged, in order.
    pub async fn produce(&self, requests: &[Value]) -> Vec<Value> {
        self.produce_as("peer.produce", requests).await
    }

    /// [`SpringPeer::produce`] through the producer that `mode` (a `peer.*` switch) turns on.
    pub async fn produce_as(&self, mode: &str, requests: &[Value]) -> Vec<Value> {
        let mut command = self.command(&[(mode, "true")]);
        command.stdin(Stdio::piped());
        let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
        let output = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("start the Spring peer (java)");
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(input.as_bytes())
                .expect("write the peer's input");
            child.wait_with_output().expect("the Spring peer finishes")
        })
        .await
        .unwrap();
        assert!(output.status.success(), "the Spring producer failed");
        let sent: Vec<Value> = report_lines(&output.stdout)
            .filter(|line| line["kind"] == "sent")
            .collect();
        assert_eq!(
            sent.len(),
            requests.len(),
            "one acknowledgement per envelope"
        );
        sent
    }

    /// Starts the peer with `properties` (e.g. `peer.consume=true`) and returns once its
    /// listener has been assigned partitions.
    pub async fn start(&self, properties: &[(&str, &str)]) -> RunningPeer {
        let mut child = self
            .command(properties)
            .spawn()
            .expect("start the Spring peer (java)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(report) = serde_json::from_str::<Value>(&line) {
                    let _ = sender.send(report);
                }
            }
        });
        let mut peer = RunningPeer {
            child,
            lines,
            seen: Vec::new(),
        };
        peer.wait_for("assigned", 1).await;
        peer
    }
}

/// A peer process; killed when dropped.
pub struct RunningPeer {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl RunningPeer {
    /// Every report of `kind` so far, once there are at least `count` (failing after
    /// [`PATIENCE`]).
    pub async fn wait_for(&mut self, kind: &str, count: usize) -> Vec<Value> {
        let of_kind = |seen: &[Value]| -> Vec<Value> {
            seen.iter().filter(|l| l["kind"] == kind).cloned().collect()
        };
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        loop {
            let found = of_kind(&self.seen);
            if found.len() >= count {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                Ok(None) => panic!("the Spring peer exited; it reported {:?}", self.seen),
                Err(_) => panic!(
                    "the Spring peer reported {} `{kind}` of {count} in time: {:?}",
                    found.len(),
                    self.seen
                ),
            }
        }
    }
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report_lines(stdout: &[u8]) -> impl Iterator<Item = Value> + '_ {
    stdout
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
}
