//! The `.env` reader (`runtime::dotenv::parse_bytes`) over arbitrary bytes. Oracle: it returns
//! (no panic, no hang: the parse is linear), every key is a dotenv key (`[\w.-]+`, never
//! `__proto__`), and no value carries a CR that the file did not spell as `\r` in double quotes.
#![no_main]

use ims_action::runtime::dotenv::parse_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let vars = parse_bytes(data);
    let escaped_cr = data.windows(2).any(|w| w == b"\\r");
    for (key, value) in &vars {
        assert!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
            "bad key {key:?}"
        );
        assert_ne!(key, "__proto__");
        assert!(escaped_cr || !value.contains('\r'), "a raw CR survived in {key}");
    }
});
