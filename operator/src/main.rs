//! The `archivist` binary: see [`archivist::cli`].

fn main() -> std::process::ExitCode {
    archivist::cli::main()
}
