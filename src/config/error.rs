//! Configuration errors that name the file, line, and the key, channel or route at fault.

use std::fmt;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault (`relay.toml`, a template path).
    pub file: String,
    /// 1-based line in that file, when known.
    pub line: Option<usize>,
    /// What is at fault: ``key `server.listen` ``, ``route `summaries` ``, ``channel `live` ``.
    pub subject: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.file, self.subject, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.subject, self.message),
        }
    }
}

/// Everything wrong with a configuration, reported together so one `check` shows it all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// At least one problem.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// An error of one problem.
    pub fn one(problem: Problem) -> Self {
        Self { problems: vec![problem] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "the configuration has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
