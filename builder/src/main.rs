//! The `nodeimg` binary: parses the command line and hands over to the `builder` library.

fn main() -> std::process::ExitCode {
    builder::cli::main()
}
