//! What every command tells its user while it runs, drawn here and nowhere else.
//!
//! One [`Mode`] per run decides how: indicatif bars and spinners when stderr is a terminal,
//! plain lines on stderr otherwise (CI, pipes), and for a command whose `--json` is a stream of
//! events (`build`) one JSON object per event on stdout; a command whose `--json` is one
//! document (`export`, `verify`) draws nothing in JSON mode.
//!
//! - [`Reporter`]: phases and steps with their durations (`build`, `boot`), messages, byte
//!   progress and the build log ([`log_file`]); every event's line and JSON shape is in
//!   [`events`].
//! - [`TaskProgress`]: the exporters' byte callbacks (`export`, `verify`): a bar per task, or a
//!   line every 10%.
//! - [`DownloadProgress`]: `fetch`'s response bodies: a bar per body with its rate, or a line
//!   every 5 s and one when it is complete.
//!
//! Commands that print one result and take no noticeable time (`inspect`, `audit`, `doctor`,
//! `scan`, `bom diff`) draw no progress.

mod bars;
mod downloads;
pub mod events;
pub mod log_file;
mod mode;
mod reporter;
mod tasks;
mod units;

pub use downloads::DownloadProgress;
pub use mode::Mode;
pub use reporter::Reporter;
pub use tasks::TaskProgress;
pub use units::human;
