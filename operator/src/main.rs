//! `samsa-operator`: `crds` writes the CRD YAML; `run` (the default) runs the controllers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Samsa operator: KafkaCluster and KafkaTopic on Kubernetes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the CRD YAML files generated from the Rust types.
    Crds {
        /// Directory the files are written to.
        #[arg(long, env = "SAMSA_CRDS_DIR", default_value = "crds")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out } => write_crds(&out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("samsa-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_crds(out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for (file, crd) in samsa_operator::crd::all_crds() {
        let path = out.join(&file);
        std::fs::write(&path, samsa_operator::crd::crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
