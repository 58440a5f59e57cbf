use clap::Parser;

/// Wallet: a digital wallet backend whose transfer rules run as a
/// versioned WebAssembly component.
#[derive(Parser)]
#[command(version, about)]
enum Cli {
    /// Show the state-machine release built into this binary.
    Release,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Release => {
            println!("{}", wallet_host::sm::RELEASE_HASH_HEX);
            Ok(())
        }
    }
}
