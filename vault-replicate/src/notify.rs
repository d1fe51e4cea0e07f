//! [`Notifier`] and [`SnsNotifier`]: tell someone when a run failed.

use std::fmt::Write as _;

use async_trait::async_trait;

use crate::error::Result;
use crate::report::Report;

/// SNS's limit for a message: 256 KiB.
pub const SNS_MAX_MESSAGE_BYTES: usize = 262_144;

/// Told about runs that failed.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends a summary of `report` (called when it has failures or is partial).
    async fn notify(&self, report: &Report) -> Result<()>;
}

/// A subject (at most 100 characters) and a message of at most `max_bytes`
/// bytes summarizing a failed run: counts, the run's error, then one line
/// per failure until the budget is spent, then `... and N more`.
pub fn summary(report: &Report, max_bytes: usize) -> (String, String) {
    let failed = report.failures.len();
    let mut subject = format!(
        "vault-replicate -> {}: {} failed{}{}",
        report.target,
        failed,
        if report.error.is_some() {
            ", run aborted"
        } else {
            ""
        },
        if report.left > 0 {
            format!(", partial: {} left", report.left)
        } else {
            String::new()
        }
    );
    subject.truncate(100);
    let mut head = String::new();
    let _ = writeln!(
        head,
        "vault-replicate run to {} finished {} after {} ms.",
        report.target,
        if report.is_success() {
            "early"
        } else {
            "with failures"
        },
        report.duration_ms
    );
    if let Some(p) = report.partial_note() {
        let _ = writeln!(head, "{p}");
    }
    if let Some(e) = &report.error {
        let _ = writeln!(head, "error: {}", truncate_chars(e, 2000));
    }
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(head, "counts: {}", counts.join(" "));
    let _ = writeln!(head, "failures ({failed}):");
    let mut message = truncate_bytes(&head, max_bytes).to_owned();
    // Room always kept for the closing line.
    let tail_room = 64;
    for (i, f) in report.failures.iter().enumerate() {
        let line = format!(
            "- {} {}/{}: {}\n",
            f.action.as_str(),
            f.mount,
            f.path,
            truncate_chars(&f.reason, 1000)
        );
        if message.len() + line.len() + tail_room > max_bytes {
            let _ = writeln!(message, "... and {} more", failed - i);
            break;
        }
        message.push_str(&line);
    }
    (subject, message)
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Publishes the summary to an SNS topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// A notifier for `topic_arn`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, report: &Report) -> Result<()> {
        // Leave room for the subject and attributes within the 256 KiB.
        let (subject, message) = summary(report, SNS_MAX_MESSAGE_BYTES - 4096);
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| crate::target::aws_error("sns", "Publish", &self.topic_arn, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::report::Failure;

    #[test]
    fn summary_stays_under_the_limit_and_says_how_many_were_left_out() {
        let mut r = Report {
            target: "secretsmanager".into(),
            ..Report::default()
        };
        for i in 0..5000 {
            r.failures.push(Failure {
                mount: "secret".into(),
                path: format!("team/app-{i}/{}", "x".repeat(100)),
                action: Action::Update,
                reason: "ThrottlingException: Rate exceeded ".repeat(5),
                retryable: true,
            });
        }
        let (subject, message) = summary(&r, 10_000);
        assert!(message.len() <= 10_000, "{}", message.len());
        assert!(subject.contains("5000 failed"));
        let shown = message.lines().filter(|l| l.starts_with("- ")).count();
        assert!(shown > 0);
        assert!(
            message.contains(&format!("... and {} more", 5000 - shown)),
            "{message}"
        );
        // a partial run says so in the subject and the message
        r.left = 7;
        let (subject, message) = summary(&r, 10_000);
        assert!(subject.contains("partial: 7 left"), "{subject}");
        assert!(message.contains("partial: 7 left"), "{message}");
        // few failures: everything listed
        r.failures.truncate(2);
        let (_, message) = summary(&r, 10_000);
        assert!(!message.contains("more"));
        assert_eq!(message.lines().filter(|l| l.starts_with("- ")).count(), 2);
    }
}
