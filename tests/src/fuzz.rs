//! Owns the stable-toolchain fuzzer of the decoders: a mutation fuzzer (no nightly, no
//! sanitizers) seeded from a committed corpus. Each target is a function over bytes that must
//! return without panicking (a stack overflow aborts the process, which fails the run too).
//!
//! Mutations: bit flips, interesting bytes (0x00, 0x7f, 0x80, 0xff), interesting integers
//! written over 4/8-byte windows (0, u32::MAX, u64::MAX, lengths just above the payload),
//! insertions and deletions of runs, duplicated runs (nesting), splices of two corpus
//! entries. The budget is `TELEMESH_FUZZ_SECONDS` seconds per target (default: a fixed number
//! of iterations, so `cargo test` stays quick). A panicking input is written to
//! `$TELEMESH_FUZZ_CRASH_DIR` (default `<tmp>/telemesh-fuzz-crashes`) as `<target>-<seed>.bin`
//! and the run fails naming it; add it to the corpus once fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small deterministic PRNG (xorshift64*), seeded per run and printed for reproduction.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

const INTERESTING_BYTES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U64: [u64; 7] = [0, 1, 0x7f, 0xffff, 0xffff_ffff, u64::MAX, 1 << 40];

/// One mutation of `input` (possibly using `other`, another corpus entry).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            2 if len >= 8 => {
                let i = rng.below(len - 7);
                let v = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
                if rng.below(2) == 0 {
                    out[i..i + 4].copy_from_slice(&(v as u32).to_le_bytes());
                } else {
                    out[i..i + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(i..i, bytes);
            }
            4 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                out.drain(i..i + n);
            }
            5 if len > 1 => {
                // duplicate a run many times: deep nesting, long lists
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                let run = out[i..i + n].to_vec();
                let times = 1 + rng.below(2_000);
                let mut repeated = Vec::with_capacity(run.len() * times);
                for _ in 0..times {
                    repeated.extend_from_slice(&run);
                }
                out.splice(i..i, repeated);
            }
            6 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                out.truncate(rng.below(len));
            }
            _ => out.push(rng.next_u64() as u8),
        }
    }
    out
}

/// The committed corpus of `target` (every file under `tests/fuzz/corpus/<target>/`).
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let entries: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .collect();
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    entries
}

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// What one run did.
#[derive(Debug, Clone, Copy)]
pub struct FuzzRun {
    pub seed: u64,
    pub executions: u64,
}

/// Runs `target` over its corpus, then over mutations for the budget; panics naming the
/// saved input when the target panics.
pub fn fuzz(name: &str, target: impl Fn(&[u8])) -> FuzzRun {
    let seeds = corpus(name);
    let budget = std::env::var("TELEMESH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let seed = std::env::var("TELEMESH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("fuzz {name}: seed {seed} (TELEMESH_FUZZ_SEED={seed} reproduces)");
    let mut rng = Rng::new(seed);
    let run_one = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = std::env::var_os("TELEMESH_FUZZ_CRASH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("telemesh-fuzz-crashes"));
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{name}-{seed}.bin"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target {name} panicked on an input saved to {}",
                path.display()
            );
        }
    };
    for input in &seeds {
        run_one(input);
    }
    let started = Instant::now();
    let mut executions = seeds.len() as u64;
    let iterations_without_budget = 1_000;
    loop {
        match budget {
            Some(b) if started.elapsed() >= b => break,
            None if executions >= iterations_without_budget => break,
            _ => {}
        }
        let base = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, other);
        run_one(&input);
        executions += 1;
    }
    eprintln!(
        "fuzz {name}: {executions} executions in {:.1}s, no panic",
        started.elapsed().as_secs_f64()
    );
    FuzzRun { seed, executions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_per_seed() {
        let a: Vec<Vec<u8>> = {
            let mut rng = Rng::new(7);
            (0..50)
                .map(|_| mutate(&mut rng, b"hello world", b"xyz"))
                .collect()
        };
        let mut rng = Rng::new(7);
        let b: Vec<Vec<u8>> = (0..50)
            .map(|_| mutate(&mut rng, b"hello world", b"xyz"))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m.as_slice() != b"hello world"));
    }
}
