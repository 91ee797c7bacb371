//! How a command ends: its verdict, or the failure that stopped it, each with its exit code.

use std::fmt;
use std::process::ExitCode;

/// A command that ran to its end: whether it found something wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done; nothing wrong (exit 0).
    Clean,
    /// Done, and something is wrong: a mismatch, a schema break, dead letters left out (exit 1).
    Problems,
}

impl Verdict {
    /// `Problems` when `found`, else `Clean`.
    pub fn problems_if(found: bool) -> Self {
        if found {
            Verdict::Problems
        } else {
            Verdict::Clean
        }
    }

    /// The process's exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Verdict::Clean => ExitCode::SUCCESS,
            Verdict::Problems => ExitCode::from(1),
        }
    }
}

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: what to fix (exit 2).
    Usage(String),
    /// The cluster failed (exit 3).
    Cluster(String),
}

impl Failure {
    /// Bad usage or configuration.
    pub fn usage(message: impl fmt::Display) -> Self {
        Failure::Usage(message.to_string())
    }

    /// The cluster failed while doing `what`.
    pub fn cluster(what: &str, error: impl fmt::Display) -> Self {
        Failure::Cluster(format!("{what}: {error}"))
    }

    /// The process's exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Cluster(_) => ExitCode::from(3),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Cluster(message) => f.write_str(message),
        }
    }
}
