//! `cargo run --release --example quickstart`: a sandbox campaign on the virtual clock.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let scenario = invite_examples::quickstart::Scenario::default();
    let report = invite_examples::quickstart::run(&scenario, &mut std::io::stdout()).await?;
    if report.violations > 0 {
        anyhow::bail!("the campaign broke {} limit rules", report.violations);
    }
    Ok(())
}
