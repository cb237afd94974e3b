//! Logging to stderr through `log` + `env_logger`. The level comes from the `LOG_LEVEL` param of
//! each activation (error, warn, info, debug, trace), else `RUST_LOG`, else info. Dependencies'
//! records are dropped whatever the level: ureq-proto hexdumps raw requests, bearer tokens
//! included, at TRACE, and rustls has nothing a user needs. Every line that is written is first
//! scrubbed of the running activation's secrets ([`crate::scrub`]), whatever it quotes, and then
//! has its control characters escaped: C0 and C1 controls (NEL, U+0085, included), U+2028 and
//! U+2029 (which log viewers and JavaScript treat as line ends) and the bidirectional overrides,
//! so that no text a caller or an upstream sends can end a line, forge the next one, or turn one
//! around.
//! In multiplexed mode ([`crate::runtime::multiplex`]) activations run at once, each on its own
//! thread: each line then starts with its activation's id, and `LOG_LEVEL` holds per thread.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

/// Targets never logged.
const SILENCED: [&str; 3] = ["ureq", "rustls", "ring"];

static DEFAULT: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);
static INSTALLED: OnceLock<()> = OnceLock::new();
/// Set once in multiplexed mode: the level is each thread's, and the process-wide one stays at
/// trace (setting it per activation would race between activations).
static PER_THREAD: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// `[activation id] `, written before each line of this thread (multiplexed mode).
    static TAG: RefCell<String> = const { RefCell::new(String::new()) };
    /// This thread's level (multiplexed mode); `None` is the default.
    static LEVEL: Cell<Option<LevelFilter>> = const { Cell::new(None) };
}

struct Filtered(env_logger::Logger);

fn silenced(target: &str) -> bool {
    SILENCED.iter().any(|s| {
        target == *s || target.starts_with(&format!("{s}::")) || target.starts_with(&format!("{s}_"))
    })
}

impl Log for Filtered {
    fn enabled(&self, metadata: &Metadata) -> bool {
        !silenced(metadata.target()) && metadata.level() <= level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let scrubbed = crate::scrub::scrub_text(&record.args().to_string());
        let clean = escape_controls(&scrubbed);
        let tag = TAG.with(|t| t.borrow().clone());
        self.0.log(
            &Record::builder()
                .args(format_args!("{tag}{clean}"))
                .level(record.level())
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Whether `c` must not reach a log line as itself: a control character (C0, DEL, C1), a line or
/// paragraph separator, or a bidirectional mark, embedding, override or isolate.
pub fn is_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every [`is_escaped`] character written as a Rust escape (`\n`, `\u{2028}`).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Parses a level name; `None` for anything else.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Installs the logger once per process (the binary calls this; library users may too).
pub fn init() {
    INSTALLED.get_or_init(|| {
        let default = std::env::var("RUST_LOG")
            .ok()
            .as_deref()
            .and_then(parse_level)
            .unwrap_or(LevelFilter::Info);
        DEFAULT.store(default as usize, Ordering::Relaxed);
        let inner = env_logger::Builder::new()
            .filter_level(LevelFilter::Trace)
            .target(env_logger::Target::Stderr)
            .format_timestamp_millis()
            .build();
        if log::set_boxed_logger(Box::new(Filtered(inner))).is_ok() {
            log::set_max_level(default);
        }
    });
}

/// From now on each thread has its own level and the process-wide one is trace: for the
/// multiplexed mode, where each activation runs on its own thread.
pub fn per_thread_levels() {
    PER_THREAD.store(true, Ordering::SeqCst);
    log::set_max_level(LevelFilter::Trace);
}

/// Starts each later line of this thread with `[activation_id] ` (multiplexed mode).
pub fn tag_thread(activation_id: &str) {
    let id: String = activation_id.chars().take(64).collect();
    TAG.with(|t| *t.borrow_mut() = format!("[{}] ", id.escape_debug()));
}

/// The level that holds for this thread now.
fn level() -> LevelFilter {
    if PER_THREAD.load(Ordering::Relaxed) {
        LEVEL.with(Cell::get).unwrap_or_else(default_level)
    } else {
        log::max_level()
    }
}

fn default_level() -> LevelFilter {
    match DEFAULT.load(Ordering::Relaxed) {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Sets the level for one activation from its `LOG_LEVEL` param (or back to the default).
pub fn apply_level(param: Option<&str>) {
    let default = default_level();
    // An empty LOG_LEVEL is what `aio` makes of an unset variable: the default, silently.
    let param = param.filter(|p| !p.trim().is_empty());
    let level = match param.map(|p| (p, parse_level(p))) {
        Some((_, Some(level))) => level,
        Some((p, None)) => {
            // ops: log-level-unknown
            log::warn!(
                "LOG_LEVEL '{}' is not one of error, warn, info, debug, trace; using {default}",
                p.chars().take(20).collect::<String>().escape_debug()
            );
            default
        }
        None => default,
    };
    if PER_THREAD.load(Ordering::Relaxed) {
        LEVEL.with(|l| l.set(Some(level)));
    } else {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_silenced_whatever_the_level() {
        assert!(silenced("ureq"));
        assert!(silenced("ureq::unversioned::transport"));
        assert!(silenced("ureq_proto::client"));
        assert!(silenced("rustls::client"));
        assert!(!silenced("ims_action::http"));
    }

    #[test]
    fn nothing_can_break_or_turn_a_line() {
        let text = "a\nb\r\u{85}c\u{2028}d\u{2029}e\u{9b}f\u{1b}[2Jg\u{202e}h\u{7f}i\tj é ✓";
        let out = escape_controls(text);
        assert_eq!(
            out,
            "a\\nb\\r\\u{85}c\\u{2028}d\\u{2029}e\\u{9b}f\\u{1b}[2Jg\\u{202e}h\\u{7f}i\\tj é ✓"
        );
        assert!(!out.chars().any(is_escaped));
        assert!(matches!(
            escape_controls("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("TRACE"), Some(LevelFilter::Trace));
        assert_eq!(parse_level("loud"), None);
    }
}
