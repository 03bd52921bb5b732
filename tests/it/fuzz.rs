//! A short fuzz pass over every target of `sundial::fuzz` (the parsers and decoders that
//! client bytes and bytes read back from disk reach). No input may panic.
//!
//! `SUNDIAL_FUZZ_INPUTS` sets inputs per target (the long mode in the README runs
//! 10 000 000), `SUNDIAL_FUZZ_SEED` replays a run, `SUNDIAL_FUZZ_TARGET` picks one target.

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn no_input_panics_a_parser_or_decoder() {
    let inputs: u64 = env("SUNDIAL_FUZZ_INPUTS").unwrap_or(20_000);
    let seed: u64 = env("SUNDIAL_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let only: Option<String> = env("SUNDIAL_FUZZ_TARGET");
    let mut failures = Vec::new();
    let targets = sundial::fuzz::targets();
    assert!(targets.len() >= 10);
    for target in targets {
        if only.as_ref().is_some_and(|o| o != target.name) {
            continue;
        }
        let started = std::time::Instant::now();
        let report = sundial::fuzz::run(&target, inputs, seed);
        eprintln!(
            "fuzz {:20} {} inputs in {:.1?} (seed {seed}): {} panics",
            target.name,
            report.inputs,
            started.elapsed(),
            report.panic_count
        );
        for (message, input) in &report.panics {
            let finding = format!("{}: {message}\n  input (hex): {input}", target.name);
            match target.contained {
                Some(how) => eprintln!("  contained ({how}): {finding}"),
                None => failures.push(finding),
            }
        }
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}
