//! The command line: every subcommand, its options and its `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The operator's tool of erp-events: topics, consumer lag, dead letters shown and redriven,
/// schema checks and an AsyncAPI document, from the catalog in `schemas/`.
///
/// The cluster is the applications' own configuration: `KAFKA_BROKERS` and the `ERP_KAFKA_*`
/// librdkafka properties (TLS, SASL...). Exit codes: 0 done; 1 done, and something is wrong
/// (a mismatch, a schema break, dead letters left out); 2 bad usage or configuration; 3 the
/// cluster failed (nothing is lost: a redrive keeps its position).
#[derive(Debug, Parser)]
#[command(
    name = "erp-events",
    version,
    after_help = "Example:\n  KAFKA_BROKERS=kafka-1:9092 erp-events dlt list erp.inventory.movements"
)]
pub struct Cli {
    /// The folder with `catalog.toml` and the event schemas.
    #[arg(
        long,
        global = true,
        env = "ERP_EVENTS_SCHEMAS",
        default_value = "schemas"
    )]
    pub schemas: PathBuf,
    /// JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The catalog's topics and their dead-letter twins on the cluster.
    #[command(subcommand, after_help = "Example:\n  erp-events topics check")]
    Topics(TopicsCommand),
    /// Consumer groups.
    #[command(subcommand, after_help = "Example:\n  erp-events groups lag")]
    Groups(GroupsCommand),
    /// Dead-letter topics: list, show and redrive dead letters.
    #[command(
        subcommand,
        after_help = "Example:\n  erp-events dlt list erp.inventory.movements --since 1h"
    )]
    Dlt(Box<DltCommand>),
    /// The catalog's event schemas.
    #[command(subcommand, after_help = "Example:\n  erp-events schemas check")]
    Schemas(SchemasCommand),
    /// Prints an AsyncAPI 3.0 document of the catalog.
    #[command(after_help = "Example:\n  erp-events asyncapi > asyncapi.json")]
    Asyncapi,
}

/// `topics …`
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Creates every catalog topic and its dead-letter twin that does not exist yet.
    #[command(after_help = "Example:\n  erp-events topics provision --replication-factor 3")]
    Provision {
        /// Replicas of each new topic (-1: the broker's `default.replication.factor`).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i32,
    },
    /// Reports catalog topics that are missing or whose partition count differs (exit 1).
    #[command(after_help = "Example:\n  erp-events topics check --json")]
    Check,
}

/// `groups …`
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Committed offset, end offset and lag per partition of each catalog consumer group.
    #[command(after_help = "Example:\n  erp-events groups lag search-sync")]
    Lag {
        /// One group (default: every consumer group of the catalog).
        group: Option<String>,
    },
}

/// `dlt …`
#[derive(Debug, Subcommand)]
pub enum DltCommand {
    /// Lists dead letters with what their headers say.
    #[command(
        after_help = "Example:\n  erp-events dlt list erp.inventory.movements --group search-sync --since 2h"
    )]
    List(Selection),
    /// Shows one dead letter: its headers decoded and its value.
    #[command(
        after_help = "Example:\n  erp-events dlt show erp.inventory.movements 42 --partition 3"
    )]
    Show {
        /// A catalog topic (its dead-letter topic is read) or a dead-letter topic.
        topic: String,
        /// The dead letter's offset.
        offset: i64,
        /// Its partition (needed when the dead-letter topic has more than one).
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Republishes dead letters to their original topic: same key, value and headers (minus
    /// the dead-letter ones), plus `erp_redriven-from` and `erp_redriven-at`.
    ///
    /// Each record is redriven once: the position on the dead-letter topic (the offsets of the
    /// consumer group `--position`) advances in the same Kafka transaction as the records it
    /// covers, so a run stopped at any point, even by SIGKILL, is resumed by the next one.
    /// Records a filter leaves out are passed over: the position moves past them too.
    #[command(
        after_help = "Examples:\n  erp-events dlt redrive erp.inventory.movements --reason timeout --dry-run\n  erp-events dlt redrive erp.inventory.movements --rate 100 --limit 5000"
    )]
    Redrive {
        #[command(flatten)]
        selection: Selection,
        /// Prints what would be sent, sends nothing and keeps the position.
        #[arg(long)]
        dry_run: bool,
        /// Sends to this catalog topic instead of each record's original topic.
        #[arg(long)]
        to: Option<String>,
        /// At most this many records per second.
        #[arg(long)]
        rate: Option<u32>,
        /// At most this many records in this run.
        #[arg(long)]
        limit: Option<u64>,
        /// The consumer group that keeps the redrive's position on the dead-letter topic.
        #[arg(long, default_value = "erp-events-redrive")]
        position: String,
    },
}

/// Which dead letters: the dead-letter topic and the filters.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// A catalog topic (its dead-letter topic is read) or a dead-letter topic.
    pub topic: String,
    /// Dead-lettered at or after: RFC 3339 (`2026-12-01T08:00:00Z`) or an age (`30m`, `2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Dead-lettered before: RFC 3339 or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this record key.
    #[arg(long, allow_hyphen_values = true)]
    pub key: Option<String>,
    /// Only envelopes of this event type (e.g. `INVENTORY_RECEIVED`).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only dead letters of this consumer group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only dead letters whose reason or error type contains this text.
    #[arg(long, allow_hyphen_values = true)]
    pub reason: Option<String>,
}

/// `schemas …`
#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// Checks that every schema file parses and that each event's versions evolve as their
    /// topic's compatibility mode allows (the check the macros run at build time). An
    /// application writes its own schemas with its schema writer (the demo's `erp-schemas`).
    #[command(after_help = "Example:\n  erp-events schemas check --schemas ./schemas")]
    Check,
}
