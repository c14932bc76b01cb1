//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP):
//! HMAC-SHA1, 30-second steps, six digits, the parameters every
//! authenticator app defaults to. SHA-1 is what the apps implement; as an
//! HMAC it is not weakened by SHA-1's collisions.
//!
//! Also the secret's base32 form (RFC 4648, no padding) and the
//! `otpauth://` URL apps read from a QR code.

use ring::hmac;

/// Seconds per step.
pub const STEP_S: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps either side of now that are still accepted (clock drift, typing time).
pub const WINDOW: i64 = 1;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding.
#[must_use]
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case, spaces and padding ignored); `None` for other characters.
#[must_use]
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !matches!(c, b' ' | b'=' | b'-')) {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The HOTP value of `counter` (RFC 4226 §5.3), as a zero-padded string.
#[must_use]
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:0width$}", value % 10u32.pow(DIGITS), width = DIGITS as usize)
}

/// The step of a Unix time in seconds.
#[must_use]
pub fn step_at(unix_s: i64) -> i64 {
    unix_s.div_euclid(STEP_S)
}

/// The TOTP code at `unix_s`.
#[must_use]
pub fn totp(secret: &[u8], unix_s: i64) -> String {
    hotp(secret, u64::try_from(step_at(unix_s)).unwrap_or(0))
}

/// The step within [`WINDOW`] of `unix_s` whose code is `code`, compared in
/// constant time and newer than `after` (a code is used once).
#[must_use]
pub fn matching_step(secret: &[u8], code: &str, unix_s: i64, after: Option<i64>) -> Option<i64> {
    let now = step_at(unix_s);
    let mut found = None;
    // Every candidate is computed and compared, whether or not one matched already.
    for step in (now - WINDOW)..=(now + WINDOW) {
        let Ok(counter) = u64::try_from(step) else { continue };
        let same = crate::auth::secret::constant_time_eq(hotp(secret, counter).as_bytes(), code.as_bytes());
        if same && after.is_none_or(|a| step > a) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URL an authenticator app reads (Google Authenticator's key URI format).
#[must_use]
pub fn otpauth_url(issuer: &str, account: &str, secret_b32: &str) -> String {
    let label = format!("{}:{}", percent(issuer), percent(account));
    format!(
        "otpauth://totp/{label}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        percent(issuer)
    )
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret.
    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_test_vectors() {
        // The RFC lists 8 digits; six digits are the same value mod 10^6.
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp(SECRET, time), eight[2..], "at {time}");
        }
    }

    #[test]
    fn rfc_4226_hotp_values() {
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(SECRET, counter as u64), *want);
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32_decode("mzxw 6ytb oi==").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None);
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(base32_decode(&base32(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn the_window_and_replays() {
        let now = 1_111_111_111;
        let code = totp(SECRET, now - 30);
        assert_eq!(matching_step(SECRET, &code, now, None), Some(step_at(now) - 1), "one step late is fine");
        assert_eq!(matching_step(SECRET, &code, now + 60, None), None, "two steps late is not");
        assert_eq!(matching_step(SECRET, &code, now, Some(step_at(now) - 1)), None, "a used code is refused");
        assert_eq!(matching_step(SECRET, "12345", now, None), None, "too short");
        assert_eq!(matching_step(SECRET, "abcdef", now, None), None);
    }

    #[test]
    fn otpauth_urls_escape_the_label() {
        assert_eq!(
            otpauth_url("polo home", "ann@example.org", "MZXW6YTBOI"),
            "otpauth://totp/polo%20home:ann%40example.org?secret=MZXW6YTBOI&issuer=polo%20home&algorithm=SHA1&digits=6&period=30"
        );
    }
}
