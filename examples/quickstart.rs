//! `cargo run --release --example quickstart [-- --database URL]`: a sandbox campaign on the
//! virtual clock, in memory or in a SQLite / PostgreSQL database.

use anyhow::bail;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut scenario = invite_examples::quickstart::Scenario::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database" => match args.next() {
                Some(url) => scenario.database_url = Some(url),
                None => bail!("--database needs a URL, e.g. sqlite://quickstart.db"),
            },
            other => bail!("unknown argument {other:?}; usage: quickstart [--database URL]"),
        }
    }
    let report = invite_examples::quickstart::run(&scenario, &mut std::io::stdout()).await?;
    if report.violations > 0 {
        bail!("the campaign broke {} limit rules", report.violations);
    }
    Ok(())
}
