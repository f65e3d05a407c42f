//! Bounded retries with exponential backoff for throttling, 5xx answers and unreachable
//! endpoints; every retry is logged (`tracing::warn!`, which `nodeimg` prints on stderr) with
//! the call, the attempt and the wait, never a credential.

use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub first_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
}

/// Environment variable that sets [`Policy::first_delay`] in milliseconds (tests shorten it).
pub const FIRST_DELAY_ENV: &str = "NODEIMG_PUBLISH_RETRY_MS";

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl Policy {
    /// The default policy, with the first delay from [`FIRST_DELAY_ENV`] when set.
    pub fn from_env() -> Self {
        let mut p = Policy::default();
        if let Some(ms) = std::env::var(FIRST_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            p.first_delay = Duration::from_millis(ms);
        }
        p
    }

    /// The wait before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// One attempt's failure.
#[derive(Debug)]
pub enum Failure {
    /// Worth another attempt: throttling, a 5xx, a connection that failed. The text says which.
    Transient(String),
    /// Not worth another attempt.
    Fatal(Error),
}

/// Runs `attempt` until it succeeds, fails fatally, or the policy's attempts are used up.
pub fn run<T>(
    call: &str,
    policy: &Policy,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T> {
    let mut n = 1;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(why)) if n >= policy.attempts => {
                return Err(Error::Retries {
                    call: call.to_owned(),
                    attempts: n,
                    why,
                });
            }
            Err(Failure::Transient(why)) => {
                let wait = policy.delay(n);
                tracing::warn!(
                    "{call}: {why}; retry {n} of {} in {:.1} s",
                    policy.attempts - 1,
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Policy {
        Policy {
            attempts: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = Policy::default();
        let d: Vec<u128> = (1..=6).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.delay(40), p.max_delay);
    }

    #[test]
    fn transient_failures_are_retried_then_succeed() {
        let mut calls = 0;
        let v = run("s3:GetObject", &quick(), || {
            calls += 1;
            if calls < 3 {
                Err(Failure::Transient("503".into()))
            } else {
                Ok(calls)
            }
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn retries_are_bounded_and_name_the_call() {
        let mut calls = 0;
        let e = run(
            "ebs:PutSnapshotBlock",
            &quick(),
            || -> Result<(), Failure> {
                calls += 1;
                Err(Failure::Transient("503 Slow Down".into()))
            },
        )
        .unwrap_err();
        assert_eq!(calls, 3);
        assert_eq!(
            e.to_string(),
            "ebs:PutSnapshotBlock: gave up after 3 attempts: 503 Slow Down"
        );
    }

    #[test]
    fn a_fatal_failure_is_not_retried() {
        let mut calls = 0;
        let e = run("ec2:RegisterImage", &quick(), || -> Result<(), Failure> {
            calls += 1;
            Err(Failure::Fatal(Error::Call {
                call: "ec2:RegisterImage".into(),
                why: "UnauthorizedOperation".into(),
            }))
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(e.to_string().contains("UnauthorizedOperation"));
    }
}
