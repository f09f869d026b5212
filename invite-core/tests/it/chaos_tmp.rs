use invite_core::chaos::{ChaosPorts, run_seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_tmp() {
    let n: u64 = std::env::var("SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let show: usize = std::env::var("SHOW").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut totals = [0usize; 4];
    let mut shown = [0usize; 4];
    let mut rules: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for seed in 0..n {
        let out = run_seed(seed, ChaosPorts::memory()).await.unwrap();
        let r = &out.report;
        for (i, v) in [&r.duplicates, &r.cap_violations, &r.lost, &r.mismatched].iter().enumerate() {
            totals[i] += v.len();
            for f in v.iter() {
                *rules.entry(f.rule).or_default() += 1;
                if shown[i] < show && f.rule != "pause (add_contact)" {
                    shown[i] += 1;
                    println!("seed {seed} [{i}] {f}");
                }
            }
        }
        if let Some(b) = &out.bound_hit { println!("seed {seed} bound {b}"); }
        if !out.engine_errors.is_empty() { println!("seed {seed} engine errors {:?}", &out.engine_errors[..out.engine_errors.len().min(3)]); }
    }
    println!("{rules:?}");
    println!("totals dup={} caps={} lost={} mismatched={}", totals[0], totals[1], totals[2], totals[3]);
}
