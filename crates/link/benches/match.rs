//! `cargo bench -p cairn-link --bench match -- N [DIR]`: generates N records, times
//! `candidates()` + `clusters()`, prints peak memory, F1, precision, recall, blocking recall and
//! the remains' top-1/top-5; with DIR, writes the generated CSV and truth there for Splink.

use std::time::Instant;

use cairn_link::{candidates, clusters, eval, generate, Options};

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// User + system CPU seconds of this process so far (from /proc/self/stat, in clock ticks of
/// 1/100 s), to tell the work from the waiting on a machine shared with others.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let g = generate::generate(n, seed);
    if let Some(dir) = args.get(1) {
        let dir = std::path::Path::new(dir);
        if let Err(e) = std::fs::create_dir_all(dir)
            .map_err(csv::Error::from)
            .and_then(|_| g.write_csv(std::fs::File::create(dir.join("records.csv"))?))
            .and_then(|_| g.write_truth(std::fs::File::create(dir.join("truth.csv"))?))
        {
            eprintln!(
                "could not write the generated lists to {}: {e}",
                dir.display()
            );
            std::process::exit(1);
        }
    }
    println!(
        "records: {n} (seed {seed}), peak memory after generating: {}",
        vm_hwm()
    );
    let cpu = cpu_seconds();
    let start = Instant::now();
    let options = Options {
        min_probability: 0.01,
        only: None,
    };
    let cands = candidates(&g.records, &[], &options);
    let t_cand = start.elapsed();
    let cl = clusters(&g.records, &[], &cands, 0.5);
    let total = start.elapsed();
    let cpu = cpu_seconds() - cpu;
    println!(
        "candidates(): {:.2} s ({} pairs >= 0.01, {} >= 0.5); + clusters(): {:.2} s total",
        t_cand.as_secs_f64(),
        cands.len(),
        cands.iter().filter(|c| c.probability >= 0.5).count(),
        total.as_secs_f64()
    );
    println!(
        "CPU time of candidates() + clusters(): {cpu:.2} s (user + system, both cores); load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!("peak memory (VmHWM): {}", vm_hwm());
    let pw = eval::pairwise(&cl, &g.truth);
    println!(
        "duplicates: F1 {:.4}, precision {:.4}, recall {:.4} ({} true pairs, {} predicted)",
        pw.f1(),
        pw.precision(),
        pw.recall(),
        pw.actual,
        pw.predicted
    );
    let ranks = eval::remains_ranks(&g.records, &g.truth, &cands);
    println!(
        "remains of a reported missing person: {}, true person first {:.3}, top 5 {:.3}, not a candidate {}",
        ranks.len(),
        eval::top(&ranks, 1),
        eval::top(&ranks, 5),
        ranks.iter().filter(|r| r.is_none()).count()
    );
    let start = Instant::now();
    let (recall, kept) = eval::blocking_recall(&g.records, &g.truth);
    println!(
        "blocking: pair recall {recall:.4}, {kept} pairs kept ({:.2} s)",
        start.elapsed().as_secs_f64()
    );
}
