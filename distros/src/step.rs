//! A guest step: a named POSIX sh script run as root in the guest over SSH.

use std::time::Duration;

use crate::shell::quote;

/// One step run in the guest.
///
/// The script starts with `set -eu` and `exec </dev/null`, so no command in it can read (and
/// swallow) input (guest-recipe pitfall 8). It must therefore be passed as an argument
/// ([`Step::remote_command`]) or uploaded, never piped into `sh -s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Short kebab-case name for logs and errors, e.g. `kernel-modules`.
    pub name: String,
    /// The whole script, `#!/bin/sh` first.
    pub script: String,
    /// How long the host lets it run.
    pub timeout: Duration,
}

/// The shortest timeout a step gets. Timeouts catch hung steps, not slow ones: under TCG on a
/// busy host a one-line step took 60 s (a build whose host was also compiling timed out in
/// `auto-upgrades-off`, whose work takes 6 s on a quiet host).
pub const MIN_STEP_TIMEOUT: Duration = Duration::from_secs(180);

impl Step {
    /// Builds a step: the header (`#!/bin/sh`, `set -eu`, stdin from `/dev/null`) then `body`.
    /// `timeout` is raised to [`MIN_STEP_TIMEOUT`] when shorter.
    pub fn new(name: impl Into<String>, timeout: Duration, body: &str) -> Step {
        Step::with_header(name.into(), "set -eu\nexec </dev/null\n", timeout, body)
    }

    /// A command written by the spec's author (`[[commands]]`, and the install of a
    /// `[[files]]` entry): `script` runs as root by `/bin/sh` with stdin from `/dev/null` and
    /// `set -e` (no `set -u`: the author's script was not written for it). Its name is
    /// `prefix` then `name` (`user-command-` + the spec's name); `timeout` is raised to
    /// [`MIN_STEP_TIMEOUT`] when shorter, like every step's.
    pub fn user_command(prefix: &str, name: &str, timeout: Duration, script: &str) -> Step {
        Step::with_header(
            format!("{prefix}{name}"),
            "exec </dev/null\nset -e\n",
            timeout,
            script,
        )
    }

    /// The one header of every guest script: `#!/bin/sh`, the step's name as a comment, then
    /// `shell_options` (the `set` and stdin lines), then `body` ending in a newline.
    fn with_header(name: String, shell_options: &str, timeout: Duration, body: &str) -> Step {
        let mut script = format!("#!/bin/sh\n# nodeimg step: {name}\n{shell_options}");
        script.push_str(body);
        if !script.ends_with('\n') {
            script.push('\n');
        }
        Step {
            name,
            script,
            timeout: timeout.max(MIN_STEP_TIMEOUT),
        }
    }

    /// The command line that runs the step as root from the build user's SSH session:
    /// `sudo -n /bin/sh -c '<script>' nodeimg-<name>` (the last word becomes `$0`).
    pub fn remote_command(&self) -> String {
        sudo_sh(&self.script, &format!("nodeimg-{}", self.name))
    }
}

/// `sudo -n /bin/sh -c '<script>' '<zeroth>'`: runs `script` as root from the build user's SSH
/// session, with `zeroth` as `$0` (shared by steps and checks).
pub fn sudo_sh(script: &str, zeroth: &str) -> String {
    format!("sudo -n /bin/sh -c {} {}", quote(script), quote(zeroth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_remote_command() {
        let s = Step::new("demo", Duration::from_secs(5), "echo 'hi'");
        assert_eq!(s.timeout, MIN_STEP_TIMEOUT);
        let long = Duration::from_secs(900);
        assert_eq!(Step::new("demo", long, "true").timeout, long);
        assert_eq!(
            s.script,
            "#!/bin/sh\n# nodeimg step: demo\nset -eu\nexec </dev/null\necho 'hi'\n"
        );
        assert!(
            s.remote_command()
                .starts_with("sudo -n /bin/sh -c '#!/bin/sh\n")
        );
        assert!(s.remote_command().contains(r"echo '\''hi'\''"));
        assert!(s.remote_command().ends_with(" 'nodeimg-demo'"));
    }

    #[test]
    fn user_command_has_no_set_u_and_the_floor_timeout() {
        let s = Step::user_command("user-command-", "hi", Duration::from_secs(5), "echo $X");
        assert_eq!(s.name, "user-command-hi");
        assert_eq!(s.timeout, MIN_STEP_TIMEOUT);
        assert_eq!(
            s.script,
            "#!/bin/sh\n# nodeimg step: user-command-hi\nexec </dev/null\nset -e\necho $X\n"
        );
        assert!(s.remote_command().ends_with(" 'nodeimg-user-command-hi'"));
    }
}
