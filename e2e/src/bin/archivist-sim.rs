//! `archivist-sim`: started by `e2e/local-cluster up`; see `archivist_e2e::sim`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    archivist_e2e::sim::main(archivist_e2e::sim::SimArgs::parse()).await
}
