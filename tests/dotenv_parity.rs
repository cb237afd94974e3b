//! `.env` read exactly as aio reads it: Node's dotenv 16.3.1 (the version
//! `@adobe/aio-lib-core-config` pins; installed by `npm ci` from tests/dotenv/package-lock.json
//! when missing) and this crate parse the same files, and every key must agree: a corpus of the
//! forms that matter (tests/dotenv/corpus.env), also through `ims-action inputs` as a deploy
//! script runs it, and thousands of generated files.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use common::{run_bin, temp_path};
use serde_json::Value;

type Vars = BTreeMap<String, String>;

fn dotenv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dotenv")
}

/// Node with dotenv 16.3.1 installed from the lock file (once per test process). Without node or
/// npm the test fails: a comparison that cannot run must not pass.
fn node_ready() -> &'static Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = dotenv_dir();
        let stamp = dir.join("node_modules/.package-lock.json");
        let stale = match (
            std::fs::metadata(&stamp),
            std::fs::metadata(dir.join("package-lock.json")),
        ) {
            (Ok(s), Ok(l)) => match (s.modified(), l.modified()) {
                (Ok(s), Ok(l)) => l > s,
                _ => true,
            },
            _ => true,
        };
        if stale {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .map_err(|e| format!("npm is needed (scripts/test-deps.sh installs it): {e}"))?;
            if !status.success() {
                return Err(format!("npm ci in {} failed: {status}", dir.display()));
            }
        }
        Ok(())
    })
}

/// What Node's dotenv 16.3.1 makes of each file, read as aio reads `.env`.
fn node_parse(files: &[Vec<u8>]) -> Vec<Vars> {
    if let Err(e) = node_ready() {
        panic!("{e}");
    }
    let input: Vec<String> = files
        .iter()
        .map(|f| base64::engine::general_purpose::STANDARD.encode(f))
        .collect();
    let mut child = Command::new("node")
        .arg(dotenv_dir().join("parse.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is needed (scripts/test-deps.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let body = serde_json::to_vec(&input).unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "node tests/dotenv/parse.js failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rust_parse(bytes: &[u8]) -> Vars {
    ims_action::runtime::dotenv::parse_bytes(bytes)
        .into_iter()
        .collect()
}

/// Every key on which the two disagree, as readable lines.
fn differences(node: &Vars, ours: &Vars) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = node.keys().chain(ours.keys()).collect();
    keys.into_iter()
        .filter(|k| node.get(*k) != ours.get(*k))
        .map(|k| format!("{k}: dotenv {:?}, ours {:?}", node.get(k), ours.get(k)))
        .collect()
}

#[test]
fn the_corpus_reads_as_dotenv_16_3_1_reads_it() {
    let corpus_path = dotenv_dir().join("corpus.env");
    let corpus = std::fs::read(&corpus_path).unwrap();
    let node = node_parse(std::slice::from_ref(&corpus)).remove(0);
    assert!(node.len() > 50, "the corpus parsed to {} keys", node.len());
    let ours: Vars = ims_action::runtime::dotenv::read(&corpus_path)
        .unwrap()
        .into_iter()
        .collect();
    let diff = differences(&node, &ours);
    assert!(
        diff.is_empty(),
        "{} of {} keys differ from dotenv 16.3.1:\n{}",
        diff.len(),
        node.len(),
        diff.join("\n")
    );

    // The same through the CLI a deploy script runs: each key substituted into an input of a
    // descriptor (wrapped, so that an empty value is still bound). `$VAR` names have no dot.
    let keys: Vec<&String> = node.keys().filter(|k| !k.contains('.')).collect();
    let mut config = String::from(
        "runtimeManifest:\n  packages:\n    p:\n      actions:\n        a:\n          inputs:\n",
    );
    for (i, k) in keys.iter().enumerate() {
        config.push_str(&format!("            V{i}: \"<${{{k}}}>\"\n"));
    }
    let dir = temp_path("dotenv-parity");
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("ext.config.yaml");
    std::fs::write(&config_path, config).unwrap();
    let out = run_bin(
        &[
            "inputs",
            "--config",
            config_path.to_str().unwrap(),
            "--action",
            "a",
            "--env",
            corpus_path.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inputs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_diff: Vec<String> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let want = format!("<{}>", node[*k]);
            let got = inputs[format!("V{i}")].as_str().unwrap_or("(absent)");
            (got != want).then(|| format!("{k}: dotenv {want:?}, ims-action inputs {got:?}"))
        })
        .collect();
    assert!(cli_diff.is_empty(), "{}", cli_diff.join("\n"));
}

/// Generated files of the characters dotenv's expression turns on, and bytes that are not UTF-8.
#[test]
fn generated_env_files_read_as_dotenv_reads_them() {
    let pieces: &[&[u8]] = &[
        b"A",
        b"B",
        b"KEY",
        b"k.x",
        b"-",
        b"_",
        b"=",
        b"=",
        b"=",
        b" = ",
        b": ",
        b":",
        b" ",
        b" ",
        b"\t",
        b"\n",
        b"\n",
        b"\n",
        b"\r\n",
        b"\r",
        b"#",
        b" #",
        b"'",
        b"'",
        b"\"",
        b"\"",
        b"`",
        b"\\",
        b"\\'",
        b"\\\"",
        b"\\n",
        b"\\r",
        b"n",
        b"value",
        b"export ",
        b"export",
        b"__proto__",
        "\u{2028}".as_bytes(),
        "\u{2029}".as_bytes(),
        "\u{FEFF}".as_bytes(),
        "\u{A0}".as_bytes(),
        "\u{85}".as_bytes(),
        "é".as_bytes(),
        "✓".as_bytes(),
        "\u{1F600}".as_bytes(),
        b"\xff",
        b"\xc3",
        b"\xe2\x80",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut files = Vec::new();
    for _ in 0..4000 {
        let mut file = Vec::new();
        for _ in 0..1 + next() % 6 {
            // Most lines start like a variable, so that the value rules are what is exercised.
            if next() % 3 != 0 {
                file.extend_from_slice(pieces[(next() % 4) as usize]);
                file.extend_from_slice(pieces[6 + (next() % 5) as usize]);
            }
            for _ in 0..next() % 10 {
                file.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            file.push(b'\n');
        }
        files.push(file);
    }
    let node = node_parse(&files);
    let mut failures = Vec::new();
    for (file, node) in files.iter().zip(&node) {
        let diff = differences(node, &rust_parse(file));
        if !diff.is_empty() {
            failures.push(format!(
                "{:?}\n  {}",
                String::from_utf8_lossy(file),
                diff.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} generated files differ from dotenv 16.3.1; the first ones:\n{}",
        failures.len(),
        files.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
