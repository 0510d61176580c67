//! Writes the benchmark calendar (10,000 events, 500 recurring series) to a
//! file, to try attache on a large calendar by hand:
//! `cargo run --release --example gen_calendar -- big.ics`

#[path = "../benches/support/calendar_gen.rs"]
mod calendar_gen;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: gen_calendar FILE.ics");
        std::process::exit(2);
    };
    let text = calendar_gen::generate(chrono::Utc::now(), 9_500, 500, 42);
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    }
}
