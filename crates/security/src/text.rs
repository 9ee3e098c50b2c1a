//! The one escaping of the security state file: names (principals, hosts,
//! resources, users, client ids) may hold any characters, the file is lines
//! of space-separated fields, so each name is percent-encoded.

/// Appends `s` with every byte that is not printable ASCII, and `%` and `=`
/// (the escape and the key/value separator), written as `%XX`.
pub(crate) fn percent_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Reads what [`percent_encode`] wrote; refuses bad escapes, unescaped
/// spaces or control bytes, and text that is not UTF-8 once decoded.
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(format!("bad percent escape at byte {i}")),
            }
            i += 3;
        } else if b.is_ascii_graphic() {
            out.push(b);
            i += 1;
        } else {
            return Err(format!("unencoded byte 0x{b:02x} at byte {i}"));
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_round_trips_as_one_field() {
        for text in ["", "plain", "with space", "100%", "k=v", "ünï cødé", "tab\there", "%41"] {
            let mut encoded = String::new();
            percent_encode(text, &mut encoded);
            assert!(!encoded.contains(' ') && !encoded.contains('='), "{encoded:?}");
            assert_eq!(percent_decode(&encoded).unwrap(), text);
        }
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%G1").is_err());
        assert!(percent_decode("a b").is_err());
        assert!(percent_decode("%FF").is_err(), "not UTF-8");
    }
}
