//! `adobe-emulator`: runs the local stand-in for Adobe's servers (see the `adobe_emulator` library).
//!
//! ```text
//! adobe-emulator [--listen ADDR] [--env-file PATH] [--aem-cert-days N] [--token-lifetime-secs N]
//!                [--exit-on-stdin-eof] [--tls-ca-out PATH [--tls-san NAME]...]
//! ```
//! `--aem-cert-days N` makes the demo AEM service credentials' certificate expire N days from now
//! (negative: already expired), to show the health warning and error states (`make ui`).
//! Prints exactly one line on stdout once it accepts connections:
//! `adobe-emulator listening on http://127.0.0.1:PORT`. Logs one line per request (method,
//! path, status; never headers or bodies) on stderr.
//!
//! With `--tls-ca-out PATH` it serves HTTPS instead (`listening on https://…`): it makes a
//! throwaway CA, writes its certificate (PEM) to PATH for the clients to trust, and serves a
//! certificate it issued for 127.0.0.1, ::1, localhost, the listen address and every
//! `--tls-san` (an IP address or a DNS name).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use adobe_emulator::{DemoCredentials, Emulator, TestCa};

const USAGE: &str = "usage: adobe-emulator [--listen ADDR (default 127.0.0.1:0)] [--env-file PATH] \
                     [--aem-cert-days N] [--token-lifetime-secs N] [--exit-on-stdin-eof] \
                     [--tls-ca-out PATH [--tls-san NAME]...]";

struct Options {
    listen: String,
    env_file: Option<String>,
    aem_cert_days: Option<i64>,
    token_lifetime: Option<Duration>,
    exit_on_stdin_eof: bool,
    /// Serve HTTPS and write the test CA's certificate here.
    tls_ca_out: Option<String>,
    /// Extra names of the server certificate.
    tls_sans: Vec<String>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:0".into(),
        env_file: None,
        aem_cert_days: None,
        token_lifetime: None,
        exit_on_stdin_eof: false,
        tls_ca_out: None,
        tls_sans: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--listen" => options.listen = value("--listen")?,
            "--env-file" => options.env_file = Some(value("--env-file")?),
            "--aem-cert-days" => {
                let days: i64 = value("--aem-cert-days")?
                    .parse()
                    .map_err(|_| "--aem-cert-days needs a whole number of days".to_string())?;
                options.aem_cert_days = Some(days);
            }
            "--token-lifetime-secs" => {
                let secs: u64 = value("--token-lifetime-secs")?
                    .parse()
                    .map_err(|_| "--token-lifetime-secs needs a whole number".to_string())?;
                options.token_lifetime = Some(Duration::from_secs(secs));
            }
            "--exit-on-stdin-eof" => options.exit_on_stdin_eof = true,
            "--tls-ca-out" => options.tls_ca_out = Some(value("--tls-ca-out")?),
            "--tls-san" => options.tls_sans.push(value("--tls-san")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if !options.tls_sans.is_empty() && options.tls_ca_out.is_none() {
        return Err("--tls-san needs --tls-ca-out".into());
    }
    Ok(options)
}

/// The server certificate's names: the defaults, the listen address, and `--tls-san`s.
fn certificate_names(options: &Options) -> Vec<String> {
    let mut names: Vec<String> = ["127.0.0.1", "::1", "localhost"].map(String::from).to_vec();
    let listen_ip = options
        .listen
        .parse::<std::net::SocketAddr>()
        .ok()
        .filter(|addr| !addr.ip().is_unspecified())
        .map(|addr| addr.ip().to_string());
    for name in listen_ip.iter().chain(&options.tls_sans) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Writes the demo `.env` readable by the owner only: it holds (throwaway) secrets.
fn write_env_file(path: &str, text: &str) -> std::io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        open.mode(0o600);
        let mut file = open.open(path)?;
        // `mode` only applies to new files; tighten an existing one too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = open.open(path)?;
        file.write_all(text.as_bytes())
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("adobe-emulator: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();

    let started = match &options.tls_ca_out {
        None => Emulator::start_on(&options.listen),
        Some(path) => {
            let ca = match TestCa::generate(&certificate_names(&options)) {
                Ok(ca) => ca,
                Err(e) => {
                    eprintln!("adobe-emulator: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = std::fs::write(path, ca.ca_pem()) {
                eprintln!("adobe-emulator: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
            Emulator::start_tls_on(&options.listen, &ca)
        }
    };
    let emulator = match started {
        Ok(e) => e,
        Err(e) => {
            eprintln!("adobe-emulator: cannot listen on {}: {e}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Some(lifetime) = options.token_lifetime {
        emulator.set_token_lifetime(lifetime, lifetime);
    }
    if let Some(path) = &options.env_file {
        let mut demo = DemoCredentials::generate();
        if let Some(days) = options.aem_cert_days {
            demo = demo.with_aem_certificate_days(days);
        }
        demo.register(&emulator);
        if let Err(e) = write_env_file(path, &demo.to_env(&emulator)) {
            eprintln!("adobe-emulator: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("adobe-emulator: wrote demo credentials to {path}");
    }

    let mut stdout = std::io::stdout().lock();
    let ready =
        writeln!(stdout, "adobe-emulator listening on {}", emulator.base_url()).and_then(|()| stdout.flush());
    if ready.is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if options.exit_on_stdin_eof {
        // A parent holding our stdin pipe dies → EOF → we exit instead of lingering.
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        eprintln!("adobe-emulator: stdin closed, exiting");
        return ExitCode::SUCCESS;
    }
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Options, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags() {
        let o = args(&[
            "--listen",
            "127.0.0.1:9",
            "--env-file=x.env",
            "--token-lifetime-secs",
            "60",
            "--exit-on-stdin-eof",
            "--aem-cert-days=-3",
        ]);
        let o = o.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.listen, "127.0.0.1:9");
        assert_eq!(o.env_file.as_deref(), Some("x.env"));
        assert_eq!(o.token_lifetime, Some(Duration::from_secs(60)));
        assert!(o.exit_on_stdin_eof);
        assert_eq!(o.aem_cert_days, Some(-3));
        assert_eq!(args(&[]).map(|o| o.aem_cert_days), Ok(None));
        assert!(args(&["--aem-cert-days", "soon"]).is_err());
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--token-lifetime-secs", "x"]).is_err());
        assert!(o.tls_ca_out.is_none());
        let default_listen = args(&["--tls-ca-out", "ca.pem"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            certificate_names(&default_listen),
            ["127.0.0.1", "::1", "localhost"]
        );
    }

    #[test]
    fn tls_flags() {
        let o = args(&[
            "--listen=10.0.0.1:0",
            "--tls-ca-out",
            "ca.pem",
            "--tls-san",
            "10.0.0.2",
            "--tls-san=ims.test",
            "--tls-san",
            "127.0.0.1",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.tls_ca_out.as_deref(), Some("ca.pem"));
        assert_eq!(
            certificate_names(&o),
            [
                "127.0.0.1",
                "::1",
                "localhost",
                "10.0.0.1",
                "10.0.0.2",
                "ims.test"
            ]
        );
        assert!(args(&["--tls-san", "x"]).is_err(), "--tls-san alone does nothing");
        assert!(args(&["--tls-ca-out"]).is_err());
    }
}
