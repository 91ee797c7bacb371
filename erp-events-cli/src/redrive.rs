//! `dlt redrive`: dead letters back to their original topic, each once. The records a run sends
//! and the position it reaches on the dead-letter topic (the offsets of a consumer group of its
//! own) are committed in one Kafka transaction, so a run stopped at any point, even by
//! SIGKILL, leaves either both or neither, and the next run resumes from the position.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use erp_events::dlt::is_dead_letter_header;
use erp_events::{Catalog, Kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cluster::{TIMEOUT, partitions, reader};
use crate::dead_letters::{DeadLetter, Filter, Flow, ROW_HEADER, scan};
use crate::failure::{Failure, Verdict};
use crate::output::{print, table};

/// The header that says where a redriven record was: `<dead-letter topic>/<partition>/<offset>`.
pub const REDRIVEN_FROM: &str = "erp_redriven-from";
/// The header that says when it was redriven (RFC 3339).
pub const REDRIVEN_AT: &str = "erp_redriven-at";

/// Records per transaction at most.
const CHUNK: usize = 100;
/// How long a transaction stays open at most, so that progress is kept often.
const CHUNK_TIME: Duration = Duration::from_millis(500);

/// What `dlt redrive` was asked to do.
pub struct Redrive<'a> {
    /// The dead-letter topic.
    pub dlt: &'a str,
    /// Which of its records.
    pub filter: &'a Filter,
    /// Send nothing, keep the position.
    pub dry_run: bool,
    /// A catalog topic to send to instead of the original topic.
    pub to: Option<&'a str>,
    /// Records per second at most.
    pub rate: Option<u32>,
    /// Records in this run at most.
    pub limit: Option<u64>,
    /// The consumer group keeping the position.
    pub position: &'a str,
}

/// A dead letter chosen to go back: the record and where it goes.
struct Chosen {
    dead: DeadLetter,
    to: String,
}

impl Redrive<'_> {
    /// Runs the redrive; dead letters with no original topic (and no `--to`) are left out and
    /// make exit 1.
    pub fn run(&self, kafka: &Kafka, catalog: &Catalog, json: bool) -> Result<Verdict, Failure> {
        if let Some(to) = self.to
            && catalog.topic(to).is_none()
        {
            let known: Vec<&str> = catalog.topics().iter().map(|t| t.name.as_str()).collect();
            return Err(Failure::usage(format!(
                "--to `{to}` is not a catalog topic; the catalog's topics: {}",
                known.join(", ")
            )));
        }
        let consumer = reader(kafka, Some(self.position))?;
        let from = self.position_now(&consumer)?;
        if self.dry_run {
            return self.dry_run(kafka, &from, json);
        }
        let (wanted, skipped) = self.count(kafka, &from)?;
        let wanted = self.limit.map_or(wanted, |limit| wanted.min(limit));
        let mut sender = Sender::start(kafka, self, &consumer, wanted)?;
        let mut positions = from.clone();
        let read_to = if wanted == 0 {
            from.clone()
        } else {
            scan(kafka, self.dlt, &from, |dead| {
                let (partition, offset) = (dead.partition, dead.offset);
                if let Choice::Send(chosen) = self.choose(dead) {
                    sender.send(*chosen)?;
                }
                positions.insert(partition, offset + 1);
                sender.keep_up(&positions)?;
                Ok(if sender.sent >= wanted {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            })?
        };
        positions.extend(read_to);
        sender.finish(&positions)?;
        let value = json!({
            "deadLetterTopic": self.dlt,
            "redriven": sender.sent,
            "leftOut": skipped,
            "position": self.position,
        });
        print(json, &value, || {
            let mut text = format!(
                "redrove {} dead letter(s) of {}; the position is kept by group `{}`",
                sender.sent, self.dlt, self.position
            );
            if skipped > 0 {
                text.push_str(&format!(
                    "\n{skipped} selected dead letter(s) name no original topic and were left out (send them with --to)"
                ));
            }
            text
        });
        Ok(Verdict::problems_if(skipped > 0))
    }

    /// Where the last run stopped, per partition.
    fn position_now(&self, consumer: &BaseConsumer) -> Result<BTreeMap<i32, i64>, Failure> {
        let Some(ids) = partitions(consumer, self.dlt)? else {
            return Err(Failure::usage(format!(
                "the cluster has no topic `{}` (create it: erp-events topics provision)",
                self.dlt
            )));
        };
        let mut list = TopicPartitionList::new();
        for partition in ids {
            list.add_partition(self.dlt, partition);
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .map_err(|error| Failure::cluster("cannot read the redrive's position", error))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect())
    }

    /// The selected dead letters past the position: how many can go, how many cannot.
    fn count(&self, kafka: &Kafka, from: &BTreeMap<i32, i64>) -> Result<(u64, u64), Failure> {
        let (mut wanted, mut skipped) = (0, 0);
        scan(kafka, self.dlt, from, |dead| {
            match self.choose(dead) {
                Choice::Send(_) => wanted += 1,
                Choice::NowhereToGo => skipped += 1,
                Choice::PassedOver => {}
            }
            Ok(Flow::Continue)
        })?;
        Ok((wanted, skipped))
    }

    /// What becomes of `dead`.
    fn choose(&self, dead: DeadLetter) -> Choice {
        if !self.filter.keeps(&dead) {
            return Choice::PassedOver;
        }
        let to = match (self.to, &dead.info) {
            (Some(to), _) => to.to_owned(),
            (None, Ok(info)) => info.original_topic.clone(),
            (None, Err(_)) => return Choice::NowhereToGo,
        };
        Choice::Send(Box::new(Chosen { dead, to }))
    }

    /// Lists what a run would send (up to the limit), in one scan.
    fn dry_run(
        &self,
        kafka: &Kafka,
        from: &BTreeMap<i32, i64>,
        json: bool,
    ) -> Result<Verdict, Failure> {
        let limit = self.limit.unwrap_or(u64::MAX);
        let mut chosen = Vec::new();
        if limit > 0 {
            scan(kafka, self.dlt, from, |dead| {
                if let Choice::Send(one) = self.choose(dead) {
                    chosen.push(*one);
                }
                Ok(if chosen.len() as u64 >= limit {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            })?;
        }
        let value = json!({
            "dryRun": true,
            "deadLetterTopic": self.dlt,
            "wouldRedrive": chosen.iter().map(|one| {
                let mut summary = one.dead.summary();
                summary["to"] = Value::String(one.to.clone());
                summary
            }).collect::<Vec<_>>(),
        });
        print(json, &value, || {
            let mut header = ROW_HEADER.to_vec();
            header.push("TO");
            let rows: Vec<Vec<String>> = chosen
                .iter()
                .map(|one| {
                    let mut row = one.dead.row();
                    row.push(one.to.clone());
                    row
                })
                .collect();
            format!(
                "{}\ndry run: would redrive {} dead letter(s) of {}; nothing sent",
                table(&header, &rows),
                chosen.len(),
                self.dlt
            )
        });
        Ok(Verdict::Clean)
    }
}

/// What becomes of one dead letter.
enum Choice {
    /// A filter leaves it out: the position passes over it.
    PassedOver,
    /// Selected, but it names no original topic and no `--to` was given.
    NowhereToGo,
    /// Selected: it goes back.
    Send(Box<Chosen>),
}

/// The transactional producer and the run's progress.
struct Sender<'a> {
    producer: BaseProducer,
    consumer: &'a BaseConsumer,
    dlt: &'a str,
    rate: Option<u32>,
    wanted: u64,
    sent: u64,
    /// Records in the open transaction, and when it began.
    open: Option<(usize, Instant)>,
    /// When the first record was sent: the rate's and the progress's clock.
    started: Option<Instant>,
    progress: Progress,
}

impl<'a> Sender<'a> {
    fn start(
        kafka: &Kafka,
        redrive: &Redrive<'a>,
        consumer: &'a BaseConsumer,
        wanted: u64,
    ) -> Result<Self, Failure> {
        let mut config = kafka.producer_config("erp-events-redrive");
        // One writer per position: a second run fences the first, and aborts what it left open.
        config.set(
            "transactional.id",
            format!("erp-events-redrive.{}.{}", redrive.position, redrive.dlt),
        );
        let producer: BaseProducer = config
            .create()
            .map_err(|error| Failure::usage(format!("cannot create a Kafka producer: {error}")))?;
        producer
            .init_transactions(TIMEOUT)
            .map_err(|error| Failure::cluster("cannot start the redrive's transactions", error))?;
        Ok(Sender {
            producer,
            consumer,
            dlt: redrive.dlt,
            rate: redrive.rate,
            wanted,
            sent: 0,
            open: None,
            started: None,
            progress: Progress::new(wanted),
        })
    }

    /// Sends one record in the open transaction (opening one).
    fn send(&mut self, chosen: Chosen) -> Result<(), Failure> {
        if self.open.is_none() {
            self.producer
                .begin_transaction()
                .map_err(|error| self.failed("cannot begin a transaction", error))?;
            self.open = Some((0, Instant::now()));
        }
        self.started.get_or_insert_with(Instant::now);
        let dead = &chosen.dead;
        let mut headers = OwnedHeaders::new();
        for (name, value) in &dead.headers {
            if !is_dead_letter_header(name) && name != REDRIVEN_FROM && name != REDRIVEN_AT {
                headers = headers.insert(Header {
                    key: name,
                    value: value.as_deref(),
                });
            }
        }
        let from = format!("{}/{}/{}", self.dlt, dead.partition, dead.offset);
        let at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .expect("now formats");
        headers = headers
            .insert(Header {
                key: REDRIVEN_FROM,
                value: Some(&from),
            })
            .insert(Header {
                key: REDRIVEN_AT,
                value: Some(&at),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&chosen.to).headers(headers);
        if let Some(key) = dead.key.as_deref() {
            record = record.key(key);
        }
        if let Some(value) = dead.value.as_deref() {
            record = record.payload(value);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    self.producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((error, _)) => {
                    return Err(self.failed(&format!("cannot send to {}", chosen.to), error));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        self.sent += 1;
        if let Some((count, _)) = &mut self.open {
            *count += 1;
        }
        Ok(())
    }

    /// Commits the open transaction when it is full or old, and keeps to the rate.
    fn keep_up(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), Failure> {
        let due = self.rate.zip(self.started).map(|(rate, started)| {
            started + Duration::from_secs_f64(self.sent as f64 / f64::from(rate.max(1)))
        });
        let waits = due.is_some_and(|due| due > Instant::now());
        if let Some((count, since)) = self.open
            && (count >= CHUNK || since.elapsed() >= CHUNK_TIME || waits)
        {
            self.commit(positions)?;
        }
        if let Some(due) = due.filter(|_| self.sent < self.wanted) {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        Ok(())
    }

    /// Commits what is open, and the position reached (also when nothing was sent).
    fn finish(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), Failure> {
        if self.open.is_none() {
            self.producer
                .begin_transaction()
                .map_err(|error| self.failed("cannot begin a transaction", error))?;
            self.open = Some((0, Instant::now()));
        }
        self.commit(positions)?;
        self.progress.done();
        Ok(())
    }

    /// Commits the records of the open transaction with the position they reach.
    fn commit(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), Failure> {
        let mut offsets = TopicPartitionList::new();
        for (&partition, &offset) in positions {
            offsets
                .add_partition_offset(self.dlt, partition, Offset::Offset(offset))
                .map_err(|error| self.failed("cannot keep the position", error))?;
        }
        let metadata = self
            .consumer
            .group_metadata()
            .expect("the position's consumer has a group");
        self.producer
            .send_offsets_to_transaction(&offsets, &metadata, TIMEOUT)
            .map_err(|error| self.failed("cannot keep the position", error))?;
        self.producer
            .commit_transaction(TIMEOUT)
            .map_err(|error| self.failed("cannot commit the redriven records", error))?;
        self.open = None;
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |started| started.elapsed());
        self.progress.show(self.sent, elapsed);
        Ok(())
    }

    /// Aborts the open transaction: its records are not delivered to readers of committed
    /// records and the position stays where it was committed last.
    fn failed(&self, what: &str, error: impl std::fmt::Display) -> Failure {
        let _ = self.producer.abort_transaction(TIMEOUT);
        Failure::cluster(
            what,
            format!(
                "{error}; {} record(s) of {} were redriven before, and the next run resumes after them",
                self.sent
                    .saturating_sub(self.open.map_or(0, |(count, _)| count as u64)),
                self.wanted
            ),
        )
    }
}

/// Progress on stderr: one rewritten line with counts and ETA on a terminal, a plain line per
/// committed transaction otherwise.
struct Progress {
    total: u64,
    terminal: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, sent: u64, elapsed: Duration) {
        let per_second = sent as f64 / elapsed.as_secs_f64().max(0.001);
        let left = self.total.saturating_sub(sent);
        let eta = if per_second > 0.0 {
            format!("{:.0} s", left as f64 / per_second)
        } else {
            "-".to_owned()
        };
        let line = format!(
            "redriven {sent} of {} ({:.0}/s, ETA {eta})",
            self.total, per_second
        );
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(stderr, "\r{line}  ")
        } else {
            writeln!(stderr, "{line}")
        };
    }

    fn done(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
