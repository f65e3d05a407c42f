//! One AWS call with nodeimg's bounded retries: the SDK's own retries are off
//! (`RetryConfig::disabled`), and each call goes through [`send`], which retries throttling,
//! 5xx answers, timeouts and connections that failed the way [`crate::retry::run`] does (same
//! [`Policy`], same `tracing::warn!` line per retry) but without blocking the runtime. Every
//! other failure becomes one error naming the call (`ec2:RegisterImage`), or the credential
//! source when the service refused the credentials; no message carries a secret.

use std::future::Future;

use aws_sdk_ebs::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::{Error, Result};
use crate::retry::Policy;
use crate::secret::{Secret, scrub};

/// Error codes AWS answers when it throttles or is briefly unable to serve.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "InternalError",
    "InternalFailure",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
];

/// Error codes of a permission the caller lacks.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "Forbidden",
];

/// Error codes of credentials the service refused.
const REFUSED_CODES: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
];

/// What every call needs besides its own input: the retry policy, the secrets no message may
/// carry, and the description of the credential source for a refusal.
#[derive(Debug, Clone)]
pub struct Calls {
    /// The retry policy.
    pub policy: Policy,
    /// The resolved credentials' secret parts (scrubbed from every message).
    pub secrets: Vec<Secret>,
    /// Where the credentials came from, for [`Error::Credentials`].
    pub tried: String,
}

/// One attempt's failure, classified.
#[derive(Debug)]
enum Failure {
    Transient(String),
    Fatal(Error),
}

impl Calls {
    /// Runs `attempt` (one `…send()`) until it succeeds, fails for good, or the policy's
    /// attempts are used up; each retry is logged with the call, why, and the wait.
    pub async fn send<T, E, F, Fut>(&self, call: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut n = 1;
        loop {
            let failure = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => self.classify(call, &e),
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Transient(why) if n >= self.policy.attempts => {
                    return Err(Error::Retries {
                        call: call.to_owned(),
                        attempts: n,
                        why,
                    });
                }
                Failure::Transient(why) => {
                    let wait = self.policy.delay(n);
                    tracing::warn!(
                        "{call}: {why}; retry {n} of {} in {:.1} s",
                        self.policy.attempts - 1,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
            }
        }
    }

    /// `text` without any of the secrets.
    pub fn scrubbed(&self, text: &str) -> String {
        let refs: Vec<&Secret> = self.secrets.iter().collect();
        scrub(text, &refs)
    }

    fn classify<E>(&self, call: &str, e: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                Failure::Transient(self.scrubbed(&DisplayErrorContext(e).to_string()))
            }
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = e.code().unwrap_or("");
                let message = self.scrubbed(e.message().unwrap_or(""));
                let what = match (code, message.as_str()) {
                    ("", "") => format!("HTTP {status} (the answer names no error)"),
                    _ => format!("HTTP {status} {code}: {message}"),
                };
                if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code) {
                    Failure::Transient(what)
                } else if REFUSED_CODES.contains(&code) {
                    Failure::Fatal(Error::Credentials {
                        target: "aws".into(),
                        tried: self.tried.clone(),
                        why: format!("{call} refused them: {what}"),
                    })
                } else if status == 403 || DENIED_CODES.contains(&code) {
                    Failure::Fatal(Error::Call {
                        call: call.to_owned(),
                        why: format!("permission denied: {what}"),
                    })
                } else {
                    Failure::Fatal(Error::Call {
                        call: call.to_owned(),
                        why: what,
                    })
                }
            }
            SdkError::ResponseError(re) => {
                let status = re.raw().status().as_u16();
                let what = format!(
                    "HTTP {status}: {}",
                    self.scrubbed(&DisplayErrorContext(e).to_string())
                );
                if status >= 500 || status == 429 {
                    Failure::Transient(what)
                } else {
                    Failure::Fatal(Error::Call {
                        call: call.to_owned(),
                        why: what,
                    })
                }
            }
            _ => Failure::Fatal(Error::Call {
                call: call.to_owned(),
                why: self.scrubbed(&DisplayErrorContext(e).to_string()),
            }),
        }
    }
}
